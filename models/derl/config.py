"""The types of DERL's ``model`` block; the values, with their sources, are in ``config.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import TextEncoderConfig


@dataclass
class ModelConfig(TextEncoderConfig):
    """DERL's network hyperparameters (see ``config.yaml`` and the method's README)."""

    hidden: int = MISSING
    n_tokens: int = MISSING
    encoder_layers: int = MISSING
    encoder_heads: int = MISSING
    encoder_ff: int = MISSING
    compressor: str = MISSING
    n_shared_experts: int = MISSING
    router_top_k: int | None = MISSING
    dropout: float = MISSING
    decoder_dropout: float = MISSING
    low_level_input: str = MISSING
    fusion_text_shared: bool = MISSING
    input_norm: str = MISSING
