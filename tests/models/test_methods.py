"""Every registered method under every protocol and every training policy, through the real runner.

A new method is covered by adding its folder (with a ``smoke`` block in its config.yaml), or by installing a
plugin that registers it: no test is edited. The checks themselves live in ``msabench.testing``, so that
``msabench check --method NAME`` runs the same ones against a method from outside msabench.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msabench import testing
from msabench.models import names
from msabench.protocols import POLICIES, Setting


@pytest.mark.parametrize("method", names())
@pytest.mark.parametrize("setting", testing.PROTOCOL_SETTINGS, ids=lambda s: s.name)
def test_method_runs_under_every_protocol(method: str, setting: Setting, tmp_path: Path) -> None:
    testing.check_runs_under_protocol(method, setting, tmp_path)


# Every policy on the reference baseline by default; the full method x policy matrix is `slow`
# (pytest -m slow).
POLICY_CASES = [
    pytest.param(m, p, marks=() if m == "lf_dnn" else pytest.mark.slow) for m in names() for p in POLICIES
]


@pytest.mark.parametrize(("method", "policy"), POLICY_CASES)
def test_method_trains_under_every_policy(method: str, policy: str, tmp_path: Path) -> None:
    testing.check_trains_under_policy(method, policy, tmp_path)


@pytest.mark.parametrize("method", names())
@pytest.mark.parametrize("dataset", testing.TASK_DATASETS)
def test_method_runs_on_every_task(method: str, dataset: str, tmp_path: Path) -> None:
    testing.check_runs_on_task(method, dataset, tmp_path)
