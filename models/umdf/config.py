"""The types of UMDF's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import TextEncoderConfig


@dataclass
class ModelConfig(TextEncoderConfig):
    """UMDF's network hyperparameters (see ``config.yaml`` and the method's README)."""

    dim: int = MISSING
    num_heads: int = MISSING
    encoder_layers: int = MISSING
    ffn_multiplier: int = MISSING
    dropout: float = MISSING
    attention_dropout: float = MISSING
    conv_kernel: int = MISSING
    max_len: int | None = MISSING
    mcim_blocks: int = MISSING
    coarse_summary: str = MISSING
    summary_tokens: int = MISSING
    mcim_order: str = MISSING
    dfim_anchor: str = MISSING
    pooling: str = MISSING
    head_dropout: float = MISSING
    attend_dropped: bool = MISSING


@dataclass
class LossConfig(TaskLossConfig):
    """UMDF's loss weights (see ``config.yaml`` and the method's README)."""

    task_missing: float = MISSING
    task_complete: float = MISSING
    prediction: float = MISSING
    representation: float = MISSING
    bidirectional: bool = MISSING
    reverse_scale: float = MISSING
    temperature: float = MISSING
