"""The types of MITR-DNet's ``model`` block; the values, with their sources, are in ``config.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import TextEncoderConfig


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
