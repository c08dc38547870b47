"""The types of LF-DNN's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import TextEncoderConfig


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


@dataclass
class LossConfig(TaskLossConfig):
    """lf_dnn's loss: the task loss alone (see ``config.yaml`` and the method's README)."""
