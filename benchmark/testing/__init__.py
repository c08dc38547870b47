"""The generic checks every method must pass, runnable against any registered method by name.

The suite's own tests parametrise these over every registered method; ``msabench check --method NAME`` runs
them for one method (a plugin's included) and prints each as PASS or FAIL. From Python::

    from msabench.testing import checks

    for check in checks("late_gru"):
        check.run(tmp_dir)        # raises AssertionError saying what is wrong

Each check is a function of (method name, output directory) that raises AssertionError with a clear message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from msabench.testing.contract import (
    PROTOCOL_SETTINGS,
    SMOKE_OVERRIDES,
    TASK_DATASETS,
    check_runs_on_task,
    check_runs_under_protocol,
    check_trains_under_policy,
    expect,
)
from msabench.testing.leakage import DATASETS as LEAKAGE_DATASETS
from msabench.testing.leakage import (
    check_nothing_removed_reaches_a_prediction,
    check_stored_text_view_is_seen_to_leak,
)

__all__ = [
    "LEAKAGE_DATASETS",
    "PROTOCOL_SETTINGS",
    "SMOKE_OVERRIDES",
    "TASK_DATASETS",
    "Check",
    "check_nothing_removed_reaches_a_prediction",
    "check_runs_on_task",
    "check_runs_under_protocol",
    "check_stored_text_view_is_seen_to_leak",
    "check_trains_under_policy",
    "checks",
    "expect",
]


@dataclass(frozen=True)
class Check:
    """One named check of one method.

    Attributes:
        name: ``group[case]``, e.g. ``protocol[intra@0.3]`` or ``no_leak[synthetic]``.
        run: runs the check, writing under the directory it is given; raises AssertionError on failure.
    """

    name: str
    run: Callable[[Path], None]

    @property
    def group(self) -> str:
        """The part of the name before the bracket (``protocol``, ``policy``, ``task``, ...)."""
        return self.name.split("[", 1)[0]


def checks(method: str) -> list[Check]:
    """Every generic check of ``method``, in the order the suite runs them.

    Raises:
        UnknownNameError: no method of that name (``msabench.models.get`` is asked first).
    """
    from msabench.models import canonical_name, get
    from msabench.protocols import POLICIES

    name = get(method).method_name or canonical_name(method)
    out = [
        Check(f"protocol[{s.name}]", functools.partial(check_runs_under_protocol, name, s))
        for s in PROTOCOL_SETTINGS
    ]
    out += [Check(f"policy[{p}]", functools.partial(check_trains_under_policy, name, p)) for p in POLICIES]
    out += [Check(f"task[{d}]", functools.partial(check_runs_on_task, name, d)) for d in TASK_DATASETS]
    out += [
        Check(f"no_leak[{d}]", functools.partial(check_nothing_removed_reaches_a_prediction, name, d))
        for d in LEAKAGE_DATASETS
    ]
    out.append(Check("stored_view_leaks", functools.partial(check_stored_text_view_is_seen_to_leak, name)))
    return out
