"""The types of DERL's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import TextEncoderConfig, check_choice


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

    def __post_init__(self) -> None:
        check_choice("model.compressor", self.compressor, ("transformer", "perceiver"))
        check_choice("model.low_level_input", self.low_level_input, ("encoder", "projection"))
        check_choice("model.input_norm", self.input_norm, ("frame", "feature"))


@dataclass
class LossConfig(TaskLossConfig):
    """DERL's loss weights (see ``config.yaml`` and the method's README)."""

    lambda_orth: float = MISSING
    lambda_sim: float = MISSING
    lambda_rec_low: float = MISSING
    rec_low_scale: str = MISSING
    lambda_rec_high: float = MISSING
    lambda_balance: float = MISSING
    cmd_moments: int = MISSING

    def __post_init__(self) -> None:
        check_choice("loss.rec_low_scale", self.rec_low_scale, ("target_std", "raw"))
