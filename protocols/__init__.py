"""Missingness protocols (evaluation settings) and training policies: pure functions of a batch on its device.

Evaluation: :func:`apply_setting` gives the missing view of a :class:`Setting` with masks fixed by
``(mask_seed, split)``. Training: :func:`build_policy` gives a :class:`TrainingPolicy` whose ``apply`` draws
fresh missingness per ``(seed, epoch)`` and also returns the complete view. Definitions (counter-based,
nested masks; each policy): ``docs/protocols.md`` and ``docs/policies.md``.

This layer sits on the torch-free core and below the data: it imports torch, never Lightning. The settings
(:mod:`~msabench.protocols.settings`) need no torch, and importing them loads none: the masks and policies
are imported when first asked for, so the command line checks a ``--rate`` before torch loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from msabench.core.vocabulary import SPLITS
from msabench.protocols.settings import (
    ALL_CONDITIONS,
    MAX_INTER_RATE,
    MISSING_CONDITIONS,
    Setting,
    normalize_condition,
)

if TYPE_CHECKING:
    from msabench.protocols.masks import apply_setting
    from msabench.protocols.policies import POLICIES, TrainingPolicy, build_policy

_LAZY = {
    "apply_setting": "msabench.protocols.masks",
    "POLICIES": "msabench.protocols.policies",
    "TrainingPolicy": "msabench.protocols.policies",
    "build_policy": "msabench.protocols.policies",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
