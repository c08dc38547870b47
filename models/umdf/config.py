"""The types of UMDF's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.errors import ConfigError
from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import TextEncoderConfig, check_choice

ANCHORS: tuple[str, str, str] = ("text", "audio", "vision")
"""The modalities the DFIM may put the others' timelines on (``dfim_anchor``)."""
CHOICES: dict[str, tuple[str, ...]] = {
    "coarse_summary": ("learned", "mean"),
    "mcim_order": ("sequential", "parallel"),
    "dfim_anchor": ANCHORS,
    "pooling": ("mean", "mean_last"),
}


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

    def __post_init__(self) -> None:
        for key, choices in CHOICES.items():
            check_choice(f"model.{key}", getattr(self, key), choices)
        if self.dim % self.num_heads:
            raise ConfigError(f"model.dim={self.dim} is not divisible by model.num_heads={self.num_heads}")
        if self.max_len is not None and self.max_len < 1:
            raise ConfigError(f"model.max_len must be null or a positive number of steps, not {self.max_len}")


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
