"""IF-MMIN in two stages: invariant-feature pretraining on complete data, then the missing-data student."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.nn import functional as F

from msabench.core.batch import Batch
from msabench.models import register
from msabench.models.base import MSAMethod, Stage
from msabench.models.components.losses import central_moment_discrepancy
from msabench.models.components.mmin_blocks import (
    complete_inputs,
    missing_inputs,
    network_options,
    reverse_inputs,
    stack_inputs,
    text_source,
)
from msabench.models.components.text import TextEncoder
from msabench.models.if_mmin.network import IFMMINNetwork, IFMMINPretrainNetwork


def build_pretrain_network(
    model: DictConfig, dims: Any, output_dim: int, text_features: TextEncoder | None = None
) -> IFMMINPretrainNetwork:
    """Build the stage-1 network (also the shape of the stage-2 teacher)."""
    if text_features is None:
        text_features = text_source(model.text_encoder, dims.text_dim, model.bert_path, model.bert_finetune)
    return IFMMINPretrainNetwork(
        text_features,
        dims.audio_dim,
        dims.vision_dim,
        output_dim,
        dropout=float(model.pretrain_dropout),
        **network_options(model),
    )


def invariant_cmd(invariant: Tensor, n_moments: int) -> Tensor:
    """Mean CMD_K over the pairs (l, v), (l, a), (a, v) of invariant features (B, 3, E) in (a, l, v) order."""
    s_a, s_l, s_v = invariant.unbind(dim=1)
    pairs = ((s_l, s_v), (s_l, s_a), (s_a, s_v))
    return torch.stack([central_moment_discrepancy(x, y, n_moments) for x, y in pairs]).mean()


class IFMMINPretrain(MSAMethod):
    """Stage 1 (``utt_shared``): encoders, S and C1 on complete data; task loss + CMD between modalities."""

    def build_network(self, model_cfg: DictConfig, dims: Any) -> IFMMINPretrainNetwork:
        """Build the encoders, the shared encoder S and the classifier on [h, s]."""
        return build_pretrain_network(model_cfg, dims, self.output_dim)

    def forward(self, batch: Batch) -> Tensor:
        """Predict from the (complete) view."""
        return self._head(self.network(missing_inputs(batch)).prediction)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Task loss + CMD (K moments) averaged over the three modality pairs, its weight ramped in."""
        out = self.network(missing_inputs(batch))
        task = self.task_loss(self._head(out.prediction), batch["label"])
        cmd = invariant_cmd(out.invariant, int(self.cfg.loss.cmd_moments))
        weight = float(self.cfg.loss.cmd_weight) * self.cmd_ramp()
        return {"loss": task + weight * cmd, "task": task, "cmd": cmd}

    def cmd_ramp(self) -> float:
        """The CMD weight's factor this epoch: epoch / ``loss.cmd_warmup_epochs`` up to 1 (always 1 without).

        CMD has no range normalisation, so on fresh encoders its higher moments are in the hundreds and the
        first epochs of a short stage 1 shrink them before the task is learnt (README, *CMD warm-up*).
        """
        warmup = int(self.cfg.loss.cmd_warmup_epochs)
        return 1.0 if warmup <= 0 else min(1.0, self.current_epoch / warmup)

    def _head(self, prediction: Tensor) -> Tensor:
        return prediction if self.is_classification else prediction.squeeze(-1)


@register("if_mmin")
class IFMMIN(MSAMethod):
    """IF-MMIN (Zuo et al., ICASSP 2023): the stage-2 student with its frozen stage-1 teacher.

    Built with ``previous=None`` (a checkpoint reloaded for evaluation), the encoders, S and the teacher are
    left untrained; their weights then come from the state dict.
    """

    paper_policy = "conditions"

    def __init__(self, cfg: DictConfig, dims: Any, previous: MSAMethod | None = None) -> None:
        super().__init__(cfg, dims)
        # The teacher reads the student's text source (stored features, or the same frozen BERT).
        self.teacher = self.freeze(
            build_pretrain_network(cfg.model, dims, self.output_dim, self.network.text_features)
        )
        if previous is not None:
            self.init_from_previous(previous)

    @classmethod
    def stages(cls, cfg: DictConfig) -> list[Stage]:
        """Full-modality pretraining (validated on complete data), then the student under the run's policy."""
        return [
            Stage("pretrain", IFMMINPretrain, policy="complete", validation="complete"),
            Stage("main", cls),
        ]

    def build_network(self, model_cfg: DictConfig, dims: Any) -> IFMMINNetwork:
        """Build the encoders, S, the IF-IM and the classifier."""
        text = text_source(
            model_cfg.text_encoder, dims.text_dim, model_cfg.bert_path, model_cfg.bert_finetune
        )
        return IFMMINNetwork(
            text,
            dims.audio_dim,
            dims.vision_dim,
            self.output_dim,
            ae_layers=tuple(model_cfg.ae_layers),
            n_blocks=int(model_cfg.n_blocks),
            ifim_variant=str(model_cfg.ifim_variant),  # type: ignore[arg-type]
            dropout=float(model_cfg.dropout),
            **network_options(model_cfg),
        )

    def init_from_previous(self, previous: MSAMethod) -> None:
        """Student encoders and S start from stage 1; the teacher is a frozen copy of the stage-1 network."""
        self.teacher.load_state_dict(previous.network.state_dict())
        self.network.copy_encoders_from(previous.network)
        self.network.shared.load_state_dict(previous.network.shared.state_dict())

    def forward(self, batch: Batch) -> Tensor:
        """Predict from the missing view: encoders -> S -> IF-IM -> classifier."""
        prediction = self.network(missing_inputs(batch)).prediction
        return prediction if self.is_classification else prediction.squeeze(-1)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Task loss + imagination (to the teacher's embeddings of x^rev) + invariance (to its s of x)."""
        out = self.network(missing_inputs(batch))
        with torch.no_grad():
            reverse = reverse_inputs(batch, self.cfg.model.reverse_input)
            reverse_h, complete_h = self.teacher.embed(stack_inputs(reverse, complete_inputs(batch))).chunk(2)
            # teacher(all-zero sequence) for the available modalities, as the authors.
            imagination_target = reverse_h.flatten(1)
            invariant_target = self.teacher.shared(complete_h)
        prediction = out.prediction if self.is_classification else out.prediction.squeeze(-1)
        task = self.task_loss(prediction, batch["label"])
        imagination = F.mse_loss(out.reconstruction, imagination_target)
        invariance = F.mse_loss(out.invariant, invariant_target)
        weights = self.cfg.loss
        loss = task + weights.imagination_weight * imagination + weights.invariance_weight * invariance
        return {"loss": loss, "task": task, "imagination": imagination, "invariance": invariance}
