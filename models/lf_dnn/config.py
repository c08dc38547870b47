"""The types of LF-DNN's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import TextEncoderConfig, check_choice

AV_POOLS = ("padded_mean", "valid_mean")
"""``padded_mean``: MMSA's mean over every padded position; ``valid_mean``: over the valid ones."""
TEXT_READOUTS = ("last_valid", "final_step")
"""``last_valid``: the LSTM state at the last valid token; ``final_step``: MMSA's, after the padding."""


@dataclass
class ModelConfig(TextEncoderConfig):
    """LF-DNN's network hyperparameters (see ``config.yaml`` and the method's README)."""

    hidden_text: int = MISSING
    hidden_audio: int = MISSING
    hidden_vision: int = MISSING
    text_out: int = MISSING
    post_fusion_dim: int = MISSING
    dropout_audio: float = MISSING
    dropout_vision: float = MISSING
    dropout_post: float = MISSING
    av_pool: str = MISSING
    text_readout: str = MISSING

    def __post_init__(self) -> None:
        check_choice("model.av_pool", self.av_pool, AV_POOLS)
        check_choice("model.text_readout", self.text_readout, TEXT_READOUTS)


@dataclass
class LossConfig(TaskLossConfig):
    """lf_dnn's loss: the task loss alone (see ``config.yaml`` and the method's README)."""
