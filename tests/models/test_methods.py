"""Every registered method under every protocol and every training policy, through the real runner.

A new method is covered by adding its folder (with a ``smoke`` block in its config.yaml): no test is edited.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msabench.models import get, names
from msabench.protocols import POLICIES, Setting
from msabench.runner import RunRequest, execute

SMOKE = [
    "trainer.fast_dev_run=true",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "data.options.n_scale=0.05",
]
SETTINGS = [Setting("intra", rate=0.3), Setting("inter", rate=0.3), Setting("condition", condition="t")]


def _run(method: str, setting: Setting, tmp_path: Path, policy: str = "paper", dataset: str = "synthetic"):
    request = RunRequest(
        method=method,
        settings=[setting],
        dataset=dataset,
        train_policy=policy,
        overrides=SMOKE,
        output=tmp_path,
        extra_blocks=("smoke",),
    )
    return execute(request)


@pytest.mark.parametrize("method", names())
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_method_runs_under_every_protocol(method: str, setting: Setting, tmp_path: Path) -> None:
    frame = _run(method, setting, tmp_path)
    assert set(frame["status"]) == {"finished"}
    assert set(frame["setting"]) == {setting.name}
    assert {"acc2_has0", "acc2_non0", "mae", "corr"} <= set(frame["metric"])
    assert frame.loc[frame["metric"] == "mae", "value"].notna().all()
    assert (frame["train_policy"] == get(method).paper_policy).all()


# Every policy on the reference baseline by default; the full method x policy matrix is `slow`
# (pytest -m slow).
POLICY_CASES = [
    pytest.param(m, p, marks=() if m == "lf_dnn" else pytest.mark.slow) for m in names() for p in POLICIES
]


@pytest.mark.parametrize(("method", "policy"), POLICY_CASES)
def test_method_trains_under_every_policy(method: str, policy: str, tmp_path: Path) -> None:
    frame = _run(method, Setting("intra", rate=0.5), tmp_path, policy=policy)
    assert set(frame["train_policy"]) == {policy}
    assert frame["value"].notna().any()


@pytest.mark.parametrize("method", names())
@pytest.mark.parametrize("dataset", ["synthetic-iemocap", "synthetic-sims"])
def test_method_runs_on_every_task(method: str, dataset: str, tmp_path: Path) -> None:
    frame = _run(method, Setting("condition", condition="ta"), tmp_path, dataset=dataset)
    expected = {"wa", "ua", "f1_macro"} if dataset.endswith("iemocap") else {"acc2", "acc3", "f1", "mae"}
    assert expected <= set(frame["metric"])
