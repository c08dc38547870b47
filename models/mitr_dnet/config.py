"""The types of MITR-DNet's ``model``, ``loss`` and ``optim`` blocks (values with sources: config.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.errors import ConfigError
from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import OptimConfig as SharedOptimConfig
from msabench.models.schema import TextEncoderConfig, check_choice


@dataclass
class ModelConfig(TextEncoderConfig):
    """MITR-DNet's network hyperparameters (see ``config.yaml`` and the method's README)."""

    separate_teacher: bool = MISSING
    encoder_heads: int = MISSING
    encoder_layers: int = MISSING
    attn_dropout_text: float = MISSING
    attn_dropout_audio: float = MISSING
    attn_dropout_vision: float = MISSING
    embed_dropout: float = MISSING
    relu_dropout: float = MISSING
    res_dropout: float = MISSING
    causal_mask: bool = MISSING
    padding_mask: bool = MISSING
    timnet_filters: int = MISSING
    timnet_kernel: int = MISSING
    timnet_dilations: list[int] = MISSING
    timnet_dropout: float = MISSING
    flip_axis: str = MISSING
    masked_mean: bool = MISSING
    fusion_heads: int = MISSING
    fusion_dropout: float = MISSING
    fusion_attn_dropout: float = MISSING
    fusion_mlp_dim: int = MISSING
    fusion_bottleneck: int = MISSING
    cross_bottleneck: int = MISSING
    head_dropout: float = MISSING
    predictor_dim: int = MISSING
    text_width: int | None = None
    max_len: int | None = None

    def __post_init__(self) -> None:
        check_choice("model.flip_axis", self.flip_axis, ("channel", "time"))
        width = self.timnet_filters * len(self.timnet_dilations)
        if width % self.fusion_heads:
            raise ConfigError(
                f"model.fusion_heads={self.fusion_heads} must divide the width "
                f"timnet_filters x len(timnet_dilations) = {width}"
            )


@dataclass
class LossConfig(TaskLossConfig):
    """MITR-DNet's loss weights (see ``config.yaml`` and the method's README)."""

    kd_weight: float = MISSING
    val_kd_weight: float = MISSING
    attraction_weight: float = MISSING
    reconstruction_weight: float = MISSING


@dataclass
class OptimConfig(SharedOptimConfig):
    """MITR-DNet's optimiser: a learning rate and a weight decay per parameter group (see ``config.yaml``)."""

    lr_bert: float = MISSING
    weight_decay_bert: float = MISSING
    lr_audio: float = MISSING
    weight_decay_audio: float = MISSING
    lr_vision: float = MISSING
    weight_decay_vision: float = MISSING
    sum_accumulated_gradients: bool = MISSING
