"""The every-method contract: a method runs through the real runner under every protocol, policy and task.

Each check trains one batch (``fast_dev_run``) on a twentieth of a synthetic dataset with the method's
``smoke`` config block, and raises AssertionError saying what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from msabench.models import get
from msabench.protocols import Setting
from msabench.runner import RunRequest, execute

SMOKE_OVERRIDES: tuple[str, ...] = (
    "trainer.fast_dev_run=true",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "data.options.n_scale=0.05",
)
PROTOCOL_SETTINGS: tuple[Setting, ...] = (
    Setting("intra", rate=0.3),
    Setting("inter", rate=0.3),
    Setting("condition", condition="t"),
)
TASK_DATASETS: tuple[str, ...] = ("synthetic-iemocap", "synthetic-sims")


def expect(condition: bool, message: str) -> None:
    """Raise AssertionError with ``message`` unless ``condition`` (also under ``python -O``)."""
    if not condition:
        raise AssertionError(message)


def smoke_run(
    method: str, setting: Setting, output: Path, policy: str = "paper", dataset: str = "synthetic"
) -> pd.DataFrame:
    """One training batch, then the test of ``setting``, through the runner; the tidy result rows."""
    request = RunRequest(
        method=method,
        settings=[setting],
        dataset=dataset,
        train_policy=policy,
        overrides=SMOKE_OVERRIDES,
        output=output,
        extra_blocks=("smoke",),
    )
    return execute(request)


def check_runs_under_protocol(method: str, setting: Setting, output: Path) -> None:
    """Under its own policy the method finishes and reports the family's metrics for ``setting``."""
    frame = smoke_run(method, setting, output)
    expect(set(frame["status"]) == {"finished"}, f"status {sorted(set(frame['status']))}, not finished")
    expect(set(frame["setting"]) == {setting.name}, f"rows for {sorted(set(frame['setting']))}")
    missing = {"acc2_has0", "acc2_non0", "mae", "corr"} - set(frame["metric"])
    expect(not missing, f"metrics missing from the results: {sorted(missing)}")
    expect(frame.loc[frame["metric"] == "mae", "value"].notna().all(), "MAE is NaN")
    policy = get(method).paper_policy
    expect(
        bool((frame["train_policy"] == policy).all()),
        f"trained under {sorted(set(frame['train_policy']))}, but the class's paper_policy is '{policy}' "
        "(set method.paper_policy in config.yaml to the same)",
    )


def check_trains_under_policy(method: str, policy: str, output: Path) -> None:
    """The method trains under the training policy ``policy`` and gives a value for intra r = 0.5."""
    frame = smoke_run(method, Setting("intra", rate=0.5), output, policy=policy)
    expect(set(frame["train_policy"]) == {policy}, f"rows record {sorted(set(frame['train_policy']))}")
    expect(frame["value"].notna().any(), "every metric is NaN")


def check_runs_on_task(method: str, dataset: str, output: Path) -> None:
    """The method runs on the SIMS-like (regression, its own metrics) or IEMOCAP-like (4 classes) data."""
    frame = smoke_run(method, Setting("condition", condition="ta"), output, dataset=dataset)
    expected = {"wa", "ua", "f1_macro"} if dataset.endswith("iemocap") else {"acc2", "acc3", "f1", "mae"}
    missing = expected - set(frame["metric"])
    expect(not missing, f"metrics missing on {dataset}: {sorted(missing)}")
