"""The types of MMIN's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import TextEncoderConfig


@dataclass
class ModelConfig(TextEncoderConfig):
    """MMIN's network hyperparameters (see ``config.yaml`` and the method's README)."""

    embedding_dim: int = MISSING
    cnn_channels: int = MISSING
    cnn_kernels: list[int] = MISSING
    cnn_dropout: float = MISSING
    pool: str = MISSING
    classifier_layers: list[int] = MISSING
    pretrain_dropout: float = MISSING
    dropout: float = MISSING
    ae_layers: list[int] = MISSING
    n_blocks: int = MISSING
    reverse_input: str = MISSING


@dataclass
class LossConfig(TaskLossConfig):
    """MMIN's loss weights (see ``config.yaml`` and the method's README)."""

    imagination_weight: float = MISSING
    cycle_weight: float = MISSING
