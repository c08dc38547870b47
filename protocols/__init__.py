"""Missingness protocols (evaluation settings) and training policies: pure functions of a batch on its device.

Evaluation: :func:`apply_setting` gives the missing view of a :class:`Setting` with masks fixed by
``(mask_seed, split)``. Training: :func:`build_policy` gives a :class:`TrainingPolicy` whose ``apply`` draws
fresh missingness per ``(seed, epoch)`` and also returns the complete view. Definitions (counter-based,
nested masks; each policy): ``docs/protocols.md`` and ``docs/policies.md``.

This layer sits on the torch-free core and below the data: it imports torch, never Lightning.
"""

from msabench.core.vocabulary import SPLITS
from msabench.protocols.masks import apply_setting
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
