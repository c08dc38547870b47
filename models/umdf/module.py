"""UMDF as an MSAMethod: one network, two views per training step, self-distillation complete -> missing."""

from __future__ import annotations

from torch import Tensor

from msabench.core.batch import MODALITIES, Batch, complete_view
from msabench.datamodules.base import DataDims
from msabench.models import register
from msabench.models.base import LossTerms, MSAMethod
from msabench.models.schema import BlockSchemas
from msabench.models.umdf.config import LossConfig, ModelConfig
from msabench.models.umdf.losses import prediction_distillation, representation_distillation
from msabench.models.umdf.network import UMDFNetwork, UMDFOutput


@register("umdf")
class UMDFMethod(MSAMethod):
    """UMDF (AAAI 2024): unified self-distillation under S1 stochastic missingness; tests the missing view."""

    network: UMDFNetwork

    paper_policy = "stochastic"
    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig)

    def build_network(self, model_cfg: ModelConfig, dims: DataDims) -> UMDFNetwork:
        text = self.text_encoder(model_cfg, dims)
        lengths = (dims.text_len, dims.audio_len, dims.vision_len)
        return UMDFNetwork(model_cfg, text, dims.audio_dim, dims.vision_dim, self.output_dim, lengths)

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
