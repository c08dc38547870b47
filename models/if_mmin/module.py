"""IF-MMIN in two stages: invariant-feature pretraining on complete data, then the missing-data student."""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import Tensor

from msabench.core.batch import Batch
from msabench.datamodules.base import DataDims
from msabench.errors import ConfigError
from msabench.models import register
from msabench.models.base import MSAMethod
from msabench.models.components.imagination import ImaginationPretrain, ImaginationStudent
from msabench.models.components.mmin_blocks import (
    complete_inputs,
    missing_inputs,
    reverse_inputs,
    stack_inputs,
)
from msabench.models.if_mmin.config import LossConfig, ModelConfig
from msabench.models.if_mmin.losses import imagination_loss, invariance_loss, invariant_cmd
from msabench.models.if_mmin.network import IFMMINNetwork, IFMMINPretrainNetwork
from msabench.models.schema import BlockSchemas


class IFMMINPretrain(ImaginationPretrain):
    """Stage 1 (``utt_shared``): encoders, S and C1 on complete data; task loss + CMD between modalities."""

    network_cls = IFMMINPretrainNetwork

    def __init__(self, cfg: DictConfig, dims: DataDims, previous: MSAMethod | None = None) -> None:
        warmup, epochs = cfg.loss.cmd_warmup_epochs, cfg.trainer.max_epochs
        if warmup >= epochs:
            raise ConfigError(
                f"loss.cmd_warmup_epochs={warmup} leaves stage 1 no epoch at the full CMD weight to select "
                f"(it trains {epochs}): lower it or raise stages.pretrain.trainer.max_epochs"
            )
        super().__init__(cfg, dims, previous)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Task loss + CMD (K moments) averaged over the three modality pairs, its weight ramped in."""
        out = self.network(missing_inputs(batch))
        return self.weighted_total(
            {
                "task": (1.0, self.task_loss(self.shaped(out.prediction), batch["label"])),
                "cmd": (
                    self.cfg.loss.cmd_weight * self.cmd_ramp(),
                    invariant_cmd(out.invariant, self.cfg.loss.cmd_moments),
                ),
            }
        )

    def cmd_ramp(self) -> float:
        """The CMD weight's factor this epoch: epoch / ``loss.cmd_warmup_epochs`` up to 1 (always 1 without).

        CMD has no range normalisation, so on fresh encoders its higher moments are in the hundreds and the
        first epochs of a short stage 1 shrink them before the task is learnt (README, *CMD warm-up*).
        """
        warmup = self.cfg.loss.cmd_warmup_epochs
        return 1.0 if warmup <= 0 else min(1.0, self.current_epoch / warmup)

    def selection_start_epoch(self) -> int:
        """The first epoch at the full CMD weight: the warm-up's epochs never select the teacher.

        During the warm-up stage 1 trains mostly the task, whose validation loss is then the lowest; the
        teacher and the student's encoders must come from IF-MMIN's own objective, task + CMD.
        """
        return max(0, self.cfg.loss.cmd_warmup_epochs)


@register("if_mmin")
class IFMMIN(ImaginationStudent):
    """IF-MMIN (Zuo et al., ICASSP 2023): the stage-2 student with its frozen stage-1 teacher."""

    network: IFMMINNetwork
    teacher: IFMMINPretrainNetwork

    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig)
    pretrain = IFMMINPretrain

    def build_network(self, model_cfg: ModelConfig, dims: DataDims) -> IFMMINNetwork:
        """Build the encoders, S, the IF-IM and the classifier."""
        text = self.text_encoder(model_cfg, dims)
        return IFMMINNetwork(model_cfg, text, dims.audio_dim, dims.vision_dim, self.output_dim)

    def init_from_previous(self, previous: MSAMethod) -> None:
        """As MMIN's, and the shared encoder S also starts from stage 1."""
        super().init_from_previous(previous)
        assert isinstance(previous.network, IFMMINPretrainNetwork)
        self.network.shared.load_state_dict(previous.network.shared.state_dict())

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Task loss + imagination (to the teacher's embeddings of x^rev) + invariance (to its s of x)."""
        out = self.network(missing_inputs(batch))
        with torch.no_grad():
            reverse = reverse_inputs(batch, self.cfg.model.reverse_input)
            reverse_h, complete_h = self.teacher.embed(stack_inputs(reverse, complete_inputs(batch))).chunk(2)
            # teacher(all-zero sequence) for the available modalities, as the authors.
            imagination_target = reverse_h.flatten(1)
            invariant_target = self.teacher.shared(complete_h)
        weights = self.cfg.loss
        return self.weighted_total(
            {
                "task": (1.0, self.task_loss(self.shaped(out.prediction), batch["label"])),
                "imagination": (
                    weights.imagination_weight,
                    imagination_loss(out.reconstruction, imagination_target),
                ),
                "invariance": (weights.invariance_weight, invariance_loss(out.invariant, invariant_target)),
            }
        )
