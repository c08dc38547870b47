"""Missingness protocols (evaluation settings) and training policies: pure functions of a batch on its device.

Evaluation: :func:`apply_setting` gives the missing view of a :class:`Setting` with masks fixed by
``(mask_seed, split)``. Training: :func:`build_policy` gives a :class:`TrainingPolicy` whose ``apply`` draws
fresh missingness per ``(seed, epoch)`` and also returns the complete view. Definitions:
``spec/protocols.md``; engineering rules (counter-based, nested masks): DESIGN.md §4.
"""

from msabench.protocols.masks import SPLITS, apply_setting
from msabench.protocols.policies import POLICIES, TrainingPolicy, build_policy
from msabench.protocols.settings import (
    ALL_CONDITIONS,
    MAX_INTER_RATE,
    MISSING_CONDITIONS,
    Setting,
    normalize_condition,
)

__all__ = [
    "ALL_CONDITIONS",
    "MAX_INTER_RATE",
    "MISSING_CONDITIONS",
    "POLICIES",
    "SPLITS",
    "Setting",
    "TrainingPolicy",
    "apply_setting",
    "build_policy",
    "normalize_condition",
]
