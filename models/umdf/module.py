"""UMDF as an MSAMethod: one network, two views per training step, self-distillation complete -> missing."""

from __future__ import annotations

from omegaconf import DictConfig
from torch import Tensor

from msabench.core.batch import MODALITIES, Batch, complete_view
from msabench.datamodules.base import DataDims
from msabench.errors import ConfigError
from msabench.models import register
from msabench.models.base import LossTerms, MSAMethod
from msabench.models.schema import BlockSchemas
from msabench.models.umdf.config import LossConfig, ModelConfig
from msabench.models.umdf.dfim import ANCHORS
from msabench.models.umdf.losses import prediction_distillation, representation_distillation
from msabench.models.umdf.network import UMDFNetwork, UMDFOutput

CHOICES: dict[str, tuple[str, ...]] = {
    "coarse_summary": ("learned", "mean"),
    "mcim_order": ("sequential", "parallel"),
    "dfim_anchor": ANCHORS,
    "pooling": ("mean", "mean_last"),
}


@register("umdf")
class UMDFMethod(MSAMethod):
    """UMDF (AAAI 2024): unified self-distillation under S1 stochastic missingness; tests the missing view."""

    network: UMDFNetwork

    paper_policy = "stochastic"
    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig)

    def build_network(self, model_cfg: DictConfig, dims: DataDims) -> UMDFNetwork:
        for key, valid in CHOICES.items():
            if model_cfg[key] not in valid:
                raise ConfigError(f"model.{key} must be one of {', '.join(valid)}, not '{model_cfg[key]}'")
        if model_cfg.dim % model_cfg.num_heads:
            raise ConfigError(
                f"model.dim={model_cfg.dim} is not divisible by model.num_heads={model_cfg.num_heads}"
            )
        if model_cfg.max_len is not None and model_cfg.max_len < 1:
            raise ConfigError(
                f"model.max_len must be null or a positive number of steps, not {model_cfg.max_len}"
            )
        return UMDFNetwork(
            text_encoder=self.text_encoder(model_cfg, dims),
            audio_dim=dims.audio_dim,
            vision_dim=dims.vision_dim,
            output_dim=self.output_dim,
            dim=model_cfg.dim,
            num_heads=model_cfg.num_heads,
            encoder_layers=model_cfg.encoder_layers,
            ffn_multiplier=model_cfg.ffn_multiplier,
            dropout=model_cfg.dropout,
            attention_dropout=model_cfg.attention_dropout,
            conv_kernel=model_cfg.conv_kernel,
            max_len=model_cfg.max_len,
            mcim_blocks=model_cfg.mcim_blocks,
            coarse_summary=model_cfg.coarse_summary,
            summary_tokens=model_cfg.summary_tokens,
            mcim_order=model_cfg.mcim_order,
            dfim_anchor=model_cfg.dfim_anchor,
            pooling=model_cfg.pooling,
            head_dropout=model_cfg.head_dropout,
            attend_dropped=model_cfg.attend_dropped,
            lengths=(dims.text_len, dims.audio_len, dims.vision_len),
        )

    def encode(self, batch: Batch) -> UMDFOutput:
        """One network pass on the view held in ``batch[m]``; the ``*_full`` keys are never read."""
        keep = [batch.get(f"{m}_keep") for m in MODALITIES]
        return self.network(
            [batch[m] for m in MODALITIES],  # type: ignore[literal-required]
            [batch[f"{m}_valid"] for m in MODALITIES],  # type: ignore[literal-required]
            None if any(k is None for k in keep) else keep,
            batch.get("text_ids"),
        )

    def forward(self, batch: Batch) -> Tensor:
        return self.shaped(self.encode(batch).prediction)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        w = self.cfg.loss
        present = batch["available"]
        missing = self.encode(batch)
        complete = self.encode(complete_view(batch))
        terms: dict[str, tuple[float, Tensor | LossTerms]] = {
            "task_missing": (w.task_missing, self.task_loss(self.shaped(missing.prediction), batch["label"])),
            "task_complete": (
                w.task_complete,
                self.task_loss(self.shaped(complete.prediction), batch["label"]),
            ),
            "distill_pred": (w.prediction, self._distill_prediction(missing, complete)),
            "distill_rep": (w.representation, self._distill_representation(missing, complete, present)),
        }
        if w.bidirectional:
            # The reverse (mutual-learning) direction: the complete view learns from the detached missing one.
            terms["reverse"] = (
                w.reverse_scale,
                {
                    "reverse_pred": (w.prediction, self._distill_prediction(complete, missing)),
                    "reverse_rep": (
                        w.representation,
                        self._distill_representation(complete, missing, present),
                    ),
                },
            )
        return self.weighted_total(terms)

    def _distill_prediction(self, student: UMDFOutput, teacher: UMDFOutput) -> Tensor:
        return prediction_distillation(
            student.prediction, teacher.prediction, self.is_classification, self.cfg.loss.temperature
        )

    @staticmethod
    def _distill_representation(student: UMDFOutput, teacher: UMDFOutput, present: Tensor) -> Tensor:
        return representation_distillation(
            student.modality, student.joint, teacher.modality, teacher.joint, present
        )
