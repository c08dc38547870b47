"""The committed reference runs (`results/synthetic/runs`) are the `synthetic` preset's own runs, whole.

`msabench sweep --config synthetic` finds a finished run by its run key, the hash of everything that decides
what is trained and measured (the resolved config, the data, the text view and encoder, the policy, the seed).
Preparing each committed run's job here, without training, gives the key the preset resolves to today: equal
keys mean the sweep finds the committed run, so a config or data change that would make the reference
leaderboard stale fails here, not in a user's multi-hour sweep. The code is not in the key: most runs predate
code fingerprints (made at one commit, which stands in for their code version), and those retrained since
record the fingerprint of the code that made them; a sweep on other code reuses either only with
--accept-stale (docs/provenance.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from msabench import store
from msabench import sweep as sw
from msabench.cli import main
from msabench.leaderboard.aggregate import code_versions
from msabench.runner.identity import run_name
from msabench.runner.prepare import prepare

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "synthetic"
RUNS = REFERENCE / "runs"
# A run directory's name without its key: dataset__method__policy[__setting]__sSEED.
_KEY = re.compile(r"__[0-9a-f]{16}$")


def _committed() -> list[Path]:
    return sorted(p for p in RUNS.glob("*/") if (p / store.RESULTS_FILE).exists()) if RUNS.is_dir() else []


def _label(name: str) -> str:
    return _KEY.sub("", name)


@pytest.fixture(scope="module")
def preset_jobs() -> dict[str, sw.Job]:
    """The preset's jobs by the readable part of their run directory's name (no data set up yet)."""
    jobs = sw.expand(sw.build_spec("synthetic"))
    labels = {}
    for job in jobs:
        matched = job.settings[0] if job.per_setting else None
        name = run_name(job.dataset, job.method, job.train_policy, matched, job.seed, "0" * 16)
        labels[_label(name)] = job
    assert len(labels) == len(jobs) == 167
    return labels


def test_reference_runs_are_committed() -> None:
    assert _committed(), "results/synthetic/runs holds no run records"


@pytest.mark.parametrize("run_dir", _committed(), ids=lambda p: _label(p.name))
def test_committed_run_is_the_presets_run_and_whole(
    run_dir: Path, preset_jobs: dict[str, sw.Job], tmp_path: Path
) -> None:
    job = preset_jobs.get(_label(run_dir.name))
    assert job is not None, f"{run_dir.name} is no run of the synthetic preset"
    prepared = prepare(job.request(tmp_path))
    assert prepared.run_dir.name == run_dir.name  # the same run key: the preset's sweep reuses this run

    status = store.read_status(run_dir)
    assert status["status"] == "finished" and status["run_key"] == prepared.run_key
    rows = store.read_run(run_dir)
    assert set(rows["status"]) == {"finished"}
    assert set(rows["run_key"]) == {prepared.run_key}
    assert set(rows["data_id"]) == {prepared.datamodule.data_identity}  # the recipe, on any machine
    # Every setting the preset asks of this checkpoint, each with every metric of its family, once.
    expected = {s.name for s in prepared.request.settings}
    per_setting = rows.groupby("setting")["metric"].agg(lambda m: tuple(sorted(m)))
    assert set(per_setting.index) == expected
    assert per_setting.nunique() == 1 and not rows.duplicated(["setting", "metric"]).any()
    assert rows["value"].notna().all()
    # The epochs the leaderboard's budget table reports, and the validation curve behind them.
    assert 1 <= status["ckpt_epoch"] <= status["epochs"] <= status["max_epochs"]
    assert list(run_dir.glob("logs/*/metrics.csv"))


def test_each_reference_entry_has_one_code_version() -> None:
    # One code version per entry as the leaderboard reads it (docs/provenance.md), so it pools every seed
    # without --pool-across-code; an entry retrained after a fix is retrained whole.
    rows = pd.concat([store.read_run(p) for p in _committed()])
    versions = rows.assign(code=code_versions(rows)).groupby(["method", "train_policy"])["code"].nunique()
    assert (versions == 1).all(), versions[versions > 1].to_dict()


LEADERBOARD_FILES = (
    "leaderboard.csv",
    "leaderboard.long.csv",
    "leaderboard.summary.csv",
    "leaderboard.budgets.csv",
    "leaderboard.md",
)


def test_the_committed_leaderboard_rebuilds_from_the_committed_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command of results/synthetic/README.md, from the repository root: the board names its --results as
    # given and links its plots. The images themselves depend on the installed fonts and renderer.
    monkeypatch.chdir(REFERENCE.parents[1])
    out = tmp_path / "leaderboard.csv"
    args = ["--results", "results/synthetic/runs", "--seeds", "1111:1117", "--out", str(out)]
    plots = ["--plots", str(tmp_path / "plots")]
    assert main(["leaderboard", *args, "--format", "md", "--reference", "lf_dnn", *plots]) == 0
    for name in LEADERBOARD_FILES:
        assert (tmp_path / name).read_bytes() == (REFERENCE / name).read_bytes(), f"{name} differs"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(
        p.name for p in (REFERENCE / "plots").iterdir()
    )
