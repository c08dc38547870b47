"""MITR-DNet as an MSAMethod: both views every training step, its losses, the optional separate teacher."""

from __future__ import annotations

import copy
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from msabench.core.batch import MODALITIES, Batch, complete_view, dropped_steps
from msabench.datamodules.base import DataDims
from msabench.errors import ConfigError
from msabench.models import register
from msabench.models.base import MSAMethod, Stage
from msabench.models.components.losses import masked_reconstruction_loss
from msabench.models.mitr_dnet.config import LossConfig, ModelConfig, OptimConfig
from msabench.models.mitr_dnet.losses import attraction_loss, distillation_losses
from msabench.models.mitr_dnet.network import MITRDNet
from msabench.models.schema import BlockSchemas


def network_inputs(batch: Batch) -> dict[str, Any]:
    """The network's inputs from a batch: the view in ``text``/``audio``/``vision`` (never ``*_full``)."""
    keys = ("text", "audio", "vision", "text_valid", "audio_valid", "vision_valid")
    return {**{k: batch[k] for k in keys}, "text_ids": batch.get("text_ids")}  # type: ignore[literal-required]


class _MITRDNetBase(MSAMethod):
    """What the teacher stage and the main method share: the network, its inputs and the parameter groups."""

    network: MITRDNet

    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig, optim=OptimConfig)

    def build_network(self, model_cfg: ModelConfig, dims: DataDims) -> MITRDNet:
        text = self.text_encoder(model_cfg, dims)
        for name, dim in (("text", text.output_dim), ("audio", dims.audio_dim), ("vision", dims.vision_dim)):
            if dim % model_cfg.encoder_heads:
                raise ConfigError(
                    f"model.encoder_heads={model_cfg.encoder_heads} must divide the {name} width {dim}"
                )
        lengths = (dims.text_len, dims.audio_len, dims.vision_len)
        return MITRDNet(model_cfg, text, dims.audio_dim, dims.vision_dim, self.output_dim, lengths)

    def forward(self, batch: Batch) -> Tensor:
        return self.shaped(self.network(**network_inputs(batch)))

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The released five groups: BERT weights, BERT biases and LayerNorms, audio/video TIMNET, the rest.

        The released code sums the gradients of its accumulated batches (its loss is not divided by their
        count); Adam is blind to the gradient's scale except through the coupled L2 term, so with
        ``optim.sum_accumulated_gradients`` the weight decays are divided by
        ``trainer.accumulate_grad_batches``, which gives the released update under Lightning's averaging.
        """
        optim = self.cfg.optim
        scale = 1.0
        if optim.name == "adam" and optim.sum_accumulated_gradients:
            scale = 1.0 / int(self.cfg.trainer.accumulate_grad_batches)
        groups: list[dict[str, Any]] = []
        taken: set[int] = set()

        def add(params: Any, lr: float, weight_decay: float) -> None:
            params = [p for p in params if p.requires_grad and id(p) not in taken]
            taken.update(id(p) for p in params)
            if params:
                groups.append(
                    {"params": params, "lr": float(lr), "weight_decay": float(weight_decay) * scale}
                )

        bert = self.network.text_encoder.bert
        if bert is not None:
            named = list(bert.named_parameters())
            no_decay = [p for n, p in named if "bias" in n or "LayerNorm" in n]
            add(
                [p for n, p in named if not ("bias" in n or "LayerNorm" in n)],
                optim.lr_bert,
                optim.weight_decay_bert,
            )
            add(no_decay, optim.lr_bert, 0.0)
        add(self.network.timnet_audio.parameters(), optim.lr_audio, optim.weight_decay_audio)
        add(self.network.timnet_vision.parameters(), optim.lr_vision, optim.weight_decay_vision)
        add(self.parameters(), optim.lr, optim.weight_decay)
        return groups


class MITRDNetTeacher(_MITRDNetBase):
    """The separate teacher's own stage (``model.separate_teacher``): the network trained on complete data."""

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": self.task_loss(self(complete_view(batch)), batch["label"])}


@register("mitr_dnet")
class MITRDNetMethod(_MITRDNetBase):
    """MITR-DNet: the complete view (teacher) and the missing view (student) pass the network every step.

    Teacher and student share the network, as released; with ``model.separate_teacher`` the teacher is a
    separate network trained first on complete data (stage ``teacher``) and frozen here, so the terms of its
    side (``pred_complete``) are constants.
    """

    paper_policy = "matched"
    validation_uses_complete_view = True

    def __init__(self, cfg: DictConfig, dims: DataDims, previous: MSAMethod | None = None) -> None:
        super().__init__(cfg, dims, previous)
        if previous is None:
            self.teacher: MITRDNet | None = None

    @classmethod
    def stages(cls, cfg: DictConfig) -> list[Stage]:
        if cfg.model.separate_teacher:
            return [
                Stage("teacher", MITRDNetTeacher, policy="complete", validation="complete"),
                Stage("student", cls),
            ]
        return [Stage("main", cls)]

    def init_from_previous(self, previous: MSAMethod) -> None:
        assert isinstance(previous.network, MITRDNet)  # the previous stage is the complete-view teacher
        self.teacher = self.frozen(copy.deepcopy(previous.network))

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        return self.mitr_loss(batch, self.cfg.loss.kd_weight)

    def validation_loss(self, batch: Batch, prediction: Tensor) -> dict[str, Tensor]:
        # The released selection loss: the full training loss, with the distillation weight lowered to 0.1.
        return self.mitr_loss(batch, self.cfg.loss.val_kd_weight)

    def mitr_loss(self, batch: Batch, kd_weight: float) -> dict[str, Tensor]:
        """The total loss and its parts, from a batch that carries both views.

        L = L_pred' + L_pred + a * sum_m attraction_m + r * sum_m recon_m + kd_weight * (kd_ts_tf + kd_ts_mib
        + kd_ss_tf), with a, r = ``loss.attraction_weight``, ``loss.reconstruction_weight`` (1 as released).
        """
        if self.cfg.model.separate_teacher and self.teacher is None:
            raise ConfigError("model.separate_teacher needs the teacher stage: train through `msabench run`")
        complete = complete_view(batch)
        student = self.network.encode(**network_inputs(batch))
        if self.teacher is None:
            teacher = self.network.encode(**network_inputs(complete))
        else:
            with torch.no_grad():
                teacher = self.teacher.encode(**network_inputs(complete))
        # The student's SimSiam heads read both views (with a frozen teacher they still learn from its side).
        z_missing, p_missing = self.network.attraction_heads(student.pooled)
        z_complete, p_complete = self.network.attraction_heads(teacher.pooled)
        attraction = attraction_loss(p_missing, z_complete, p_complete, z_missing).sum()
        targets = (teacher.text_tokens.detach(), complete["audio"], complete["vision"])
        dropped = [dropped_steps(batch, m) for m in MODALITIES]
        dropped[0] = dropped[0][:, 1:]
        lengths = (targets[0].shape[1], targets[1].shape[1], targets[2].shape[1])
        rebuilt = self.network.reconstruct(student.sequences, lengths)
        reconstruction = sum(
            masked_reconstruction_loss(r, t, d) for r, t, d in zip(rebuilt, targets, dropped, strict=True)
        )
        loss_cfg = self.cfg.loss
        return self.weighted_total(
            {
                "pred_missing": (1.0, self.task_loss(self.shaped(student.prediction), batch["label"])),
                "pred_complete": (1.0, self.task_loss(self.shaped(teacher.prediction), batch["label"])),
                "attraction": (loss_cfg.attraction_weight, attraction),
                "reconstruction": (loss_cfg.reconstruction_weight, reconstruction),  # type: ignore[dict-item]
                "distillation": (
                    kd_weight,
                    {k: (1.0, v) for k, v in distillation_losses(student, teacher).items()},
                ),
            }
        )
