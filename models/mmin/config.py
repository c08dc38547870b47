"""The types of MMIN's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.components.imagination_config import ImaginationModelConfig
from msabench.models.schema import LossConfig as TaskLossConfig


@dataclass
class ModelConfig(ImaginationModelConfig):
    """MMIN's network hyperparameters: the keys every imagination network has (see ``config.yaml``)."""


@dataclass
class LossConfig(TaskLossConfig):
    """MMIN's loss weights (see ``config.yaml`` and the method's README)."""

    imagination_weight: float = MISSING
    cycle_weight: float = MISSING
