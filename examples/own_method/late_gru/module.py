"""late_gru as an msabench method: the network, its losses, nothing else (the base does the rest)."""

from __future__ import annotations

from torch import Tensor

from late_gru.config import LossConfig, ModelConfig
from late_gru.network import LateFusionGRU
from msabench.core.batch import Batch
from msabench.core.vocabulary import MODALITIES
from msabench.datamodules.base import DataDims
from msabench.models import register
from msabench.models.base import MSAMethod
from msabench.models.schema import BlockSchemas


@register("late_gru")
class LateGRU(MSAMethod):
    """Late-fusion GRU trained on whole-modality and frame drops (the ``stochastic`` policy)."""

    network: LateFusionGRU

    paper_policy = "stochastic"  # the same as `method.paper_policy` in config.yaml (what runs use)
    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig)

    def build_network(self, model_cfg: ModelConfig, dims: DataDims) -> LateFusionGRU:
        return LateFusionGRU(
            (dims.text_dim, dims.audio_dim, dims.vision_dim),
            self.output_dim,
            hidden=model_cfg.hidden,
            dropout=model_cfg.dropout,
        )

    def _predict(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        inputs = [batch[m] for m in MODALITIES]  # type: ignore[literal-required]
        present = [batch[f"{m}_keep"] for m in MODALITIES]  # type: ignore[literal-required]
        return self.network(inputs, present, batch["available"])

    def forward(self, batch: Batch) -> Tensor:
        fused, _, _ = self._predict(batch)
        return fused if self.is_classification else fused.squeeze(-1)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        fused, unimodal, there = self._predict(batch)
        label = batch["label"]
        task = self.task_loss(fused if self.is_classification else fused.squeeze(-1), label)
        # Each unimodal head learns from the samples that have its modality, so that its prediction means
        # something on its own when the other modalities are missing at test time.
        parts = {
            f"unimodal_{m}": self.task_loss(unimodal[there[:, j], j].squeeze(-1), label[there[:, j]])
            for j, m in enumerate(MODALITIES)
            if bool(there[:, j].any())
        }
        unimodal_loss = sum(parts.values()) / len(MODALITIES)
        loss = task + self.cfg.loss.unimodal_weight * unimodal_loss
        return {"loss": loss, "task": task, **parts}
