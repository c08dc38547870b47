"""MMIN as two stages: ``utt_fusion`` pretraining on complete data, then the imagination student."""

from __future__ import annotations

import torch
from torch import Tensor

from msabench.core.batch import Batch
from msabench.datamodules.base import DataDims
from msabench.models import register
from msabench.models.components.imagination import ImaginationPretrain, ImaginationStudent
from msabench.models.components.mmin_blocks import missing_inputs, reverse_inputs
from msabench.models.mmin.config import LossConfig, ModelConfig
from msabench.models.mmin.losses import cycle_loss, imagination_loss
from msabench.models.mmin.network import MMINNetwork, MMINPretrainNetwork
from msabench.models.schema import BlockSchemas


class MMINPretrain(ImaginationPretrain):
    """Stage 1 (``utt_fusion``): encoders and C0 on complete data, task loss only."""

    network_cls = MMINPretrainNetwork

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Cross-entropy (or the regression loss)."""
        return {"loss": self.task_loss(self(batch), batch["label"])}


@register("mmin")
class MMIN(ImaginationStudent):
    """MMIN (Zhao et al., ACL 2021): the stage-2 student with its frozen stage-1 teacher."""

    network: MMINNetwork
    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig)
    pretrain = MMINPretrain

    def build_network(self, model_cfg: ModelConfig, dims: DataDims) -> MMINNetwork:
        """Build the encoders, the forward and cycle autoencoders and the classifier."""
        text = self.text_encoder(model_cfg, dims)
        return MMINNetwork(model_cfg, text, dims.audio_dim, dims.vision_dim, self.output_dim)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Task loss + forward imagination (to the teacher's embeddings of x^rev) + cycle (back to sg(h))."""
        out = self.network(missing_inputs(batch))
        with torch.no_grad():
            # teacher(all-zero sequence) for the available modalities, as the authors.
            target = self.teacher.embed(reverse_inputs(batch, self.cfg.model.reverse_input)).flatten(1)
        weights = self.cfg.loss
        return self.weighted_total(
            {
                "task": (1.0, self.task_loss(self.shaped(out.prediction), batch["label"])),
                "imagination": (weights.imagination_weight, imagination_loss(out.reconstruction, target)),
                "cycle": (weights.cycle_weight, cycle_loss(out.cycle, out.embeddings)),
            }
        )
