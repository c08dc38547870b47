"""MMIN as two stages: ``utt_fusion`` pretraining on complete data, then the imagination student."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.nn import functional as F

from msabench.core.batch import Batch
from msabench.models import register
from msabench.models.base import MSAMethod, Stage
from msabench.models.components.mmin_blocks import (
    missing_inputs,
    network_options,
    reverse_inputs,
    text_source,
)
from msabench.models.components.text import TextEncoder
from msabench.models.mmin.network import MMINNetwork, MMINPretrainNetwork


def build_pretrain_network(
    model: DictConfig, dims: Any, output_dim: int, text_features: TextEncoder | None = None
) -> MMINPretrainNetwork:
    """Build the stage-1 network (also the shape of the stage-2 teacher)."""
    if text_features is None:
        text_features = text_source(model.text_encoder, dims.text_dim, model.bert_path, model.bert_finetune)
    return MMINPretrainNetwork(
        text_features,
        dims.audio_dim,
        dims.vision_dim,
        output_dim,
        dropout=float(model.pretrain_dropout),
        **network_options(model),
    )


class MMINPretrain(MSAMethod):
    """Stage 1 (``utt_fusion``): encoders and C0 on complete data, task loss only."""

    def build_network(self, model_cfg: DictConfig, dims: Any) -> MMINPretrainNetwork:
        """Build the encoders and the fusion classifier."""
        return build_pretrain_network(model_cfg, dims, self.output_dim)

    def forward(self, batch: Batch) -> Tensor:
        """Predict from the (complete) view."""
        prediction = self.network(missing_inputs(batch)).prediction
        return prediction if self.is_classification else prediction.squeeze(-1)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Cross-entropy (or the regression loss)."""
        return {"loss": self.task_loss(self(batch), batch["label"])}


@register("mmin")
class MMIN(MSAMethod):
    """MMIN (Zhao et al., ACL 2021): the stage-2 student with its frozen stage-1 teacher.

    Built with ``previous=None`` (a checkpoint reloaded for evaluation), the encoders and the teacher are left
    untrained; their weights then come from the state dict.
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
        return [Stage("pretrain", MMINPretrain, policy="complete", validation="complete"), Stage("main", cls)]

    def build_network(self, model_cfg: DictConfig, dims: Any) -> MMINNetwork:
        """Build the encoders, the forward and cycle autoencoders and the classifier."""
        text = text_source(
            model_cfg.text_encoder, dims.text_dim, model_cfg.bert_path, model_cfg.bert_finetune
        )
        return MMINNetwork(
            text,
            dims.audio_dim,
            dims.vision_dim,
            self.output_dim,
            ae_layers=tuple(model_cfg.ae_layers),
            n_blocks=int(model_cfg.n_blocks),
            dropout=float(model_cfg.dropout),
            **network_options(model_cfg),
        )

    def init_from_previous(self, previous: MSAMethod) -> None:
        """Student encoders start from stage 1; the teacher is a frozen copy of the stage-1 network."""
        self.teacher.load_state_dict(previous.network.state_dict())
        self.network.copy_encoders_from(previous.network)

    def forward(self, batch: Batch) -> Tensor:
        """Predict from the missing view: encoders -> forward autoencoder -> classifier."""
        prediction = self.network(missing_inputs(batch)).prediction
        return prediction if self.is_classification else prediction.squeeze(-1)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        """Task loss + forward imagination (to the teacher's embeddings of x^rev) + cycle (back to sg(h))."""
        out = self.network(missing_inputs(batch))
        with torch.no_grad():
            # teacher(all-zero sequence) for the available modalities, as the authors.
            target = self.teacher.embed(reverse_inputs(batch, self.cfg.model.reverse_input)).flatten(1)
        prediction = out.prediction if self.is_classification else out.prediction.squeeze(-1)
        task = self.task_loss(prediction, batch["label"])
        imagination = F.mse_loss(out.reconstruction, target)
        cycle = F.mse_loss(out.cycle, out.embeddings.flatten(1).detach())
        weights = self.cfg.loss
        loss = task + float(weights.imagination_weight) * imagination + float(weights.cycle_weight) * cycle
        return {"loss": loss, "task": task, "imagination": imagination, "cycle": cycle}
