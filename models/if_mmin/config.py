"""The types of IF-MMIN's ``model`` and ``loss`` blocks (the values, with their sources: ``config.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.components.imagination_config import ImaginationModelConfig
from msabench.models.schema import LossConfig as TaskLossConfig
from msabench.models.schema import check_choice


@dataclass
class ModelConfig(ImaginationModelConfig):
    """IF-MMIN's network hyperparameters: an imagination network's, and which IF-IM forward (``config.yaml``).

    Attributes:
        ifim_variant: ``current`` (the repository's IF-IM forward since 2024-09-04) or ``2022`` (at
            publication).
    """

    ifim_variant: str = MISSING

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("model.ifim_variant", self.ifim_variant, ("current", "2022"))


@dataclass
class LossConfig(TaskLossConfig):
    """IF-MMIN's loss weights (both stages) (see ``config.yaml`` and the method's README)."""

    imagination_weight: float = MISSING
    invariance_weight: float = MISSING
    cmd_weight: float = MISSING
    cmd_moments: int = MISSING
    cmd_warmup_epochs: int = MISSING
