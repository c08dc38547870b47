"""The types of late_gru's ``model`` and ``loss`` blocks (the values, with their reasons: ``config.yaml``).

msabench types the composed blocks with these before a run starts, so ``loss.unimodal_weight=abc`` is one
line and nothing is written. The fields have no defaults: each value is written once, in ``config.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from msabench.models.schema import LossConfig as TaskLossConfig


@dataclass
class ModelConfig:
    """The network's widths (see ``config.yaml``).

    It reads the stored text features, so it has none of the ``TextEncoderConfig`` keys the built-in methods
    share (their optional local BERT).
    """

    hidden: int = MISSING
    dropout: float = MISSING


@dataclass
class LossConfig(TaskLossConfig):
    """The weight of the unimodal heads' loss beside the fused prediction's (see ``config.yaml``)."""

    unimodal_weight: float = MISSING
