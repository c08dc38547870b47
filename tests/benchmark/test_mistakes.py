"""Mistakes that gave a traceback or passed silently (issue 37, item 4): one line, exit 2, nothing written.

Damaged runs in a results root: a ``results.csv`` that cannot be read is refused (the leaderboard must not
rest on it); a run whose ``status.json`` is missing or torn is left out with one ``warning:`` line.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from msabench.cli import main
from msabench.cli.run import format_table

FAST = ["data.options.n_scale=0.05", "trainer.fast_dev_run=true"]
SWEEP_FLAGS = {"--methods": "lf_dnn", "--rates": "intra=0.3", "--seeds": "1111", "--workers": "0"}
SWEEP = ["sweep", *[x for kv in SWEEP_FLAGS.items() for x in kv]]


def call(args: list[str]) -> tuple[int, str, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def refused(args: list[str], said: str) -> str:
    code, _, err = call(args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert said in err, err
    return err


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root with one finished run (copied by the tests that damage it)."""
    root = tmp_path_factory.mktemp("finished") / "runs"
    code, _, err = call(
        ["run", "--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "--output", str(root), *FAST]
    )
    assert code == 0, err
    return root


def _copy(finished: Path, tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "runs"
    shutil.copytree(finished, root)
    (run_dir,) = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return root, run_dir


# ------------------------------------------------------------------------------------------------ sweeps
def test_sweep_file_with_overrides_as_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("grid: {methods: lf_dnn, rates: '0.3'}\noverrides: {trainer.max_epochs: 1}\n")
    refused(["sweep", "--config", str(path), "--dry-run"], "`overrides:` in sweep file")
    path.write_text("grid: 5\n")
    refused(["sweep", "--config", str(path), "--dry-run"], "`grid:` in s must be a mapping")


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--seeds", "1113:1111"], "seed range '1113:1111' runs backwards"),
        (["--methods", ""], "methods in sweep is empty"),
        (["--datasets", " , "], "datasets in sweep is empty"),
        (["--seeds", ""], "seeds in sweep is empty"),
        (["--rates", "intra=0:0.18:1e-7"], "gives 1,800,001 rates, more than 1,000"),
        (["--seeds", "1:5000"], "gives 5,000 seeds, more than 1,000"),
        (["--output", ""], "argument --output: an empty path"),
    ],
)
def test_sweep_grid_slips(flags: list[str], said: str, tmp_path: Path) -> None:
    given = {**SWEEP_FLAGS, "--output": str(tmp_path / "runs"), flags[0]: flags[1]}
    refused(["sweep", *[x for kv in given.items() for x in kv], "--dry-run"], said)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["trainer.max_epochs=0"], "trainer.max_epochs must be an integer >= 1"),
        (["--output", "/proc/msabench/runs"], "--output /proc/msabench/runs: cannot write into /proc"),
    ],
)
def test_dry_run_checks_what_the_sweep_checks(extra: list[str], said: str, tmp_path: Path) -> None:
    args = [*SWEEP, "--output", str(tmp_path / "runs"), *extra]
    refused([*args, "--dry-run"], said)
    refused(args, said)


# ---------------------------------------------------------------------------------------------- leaderboard
@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "is not a results table"),
        (b"\x80\x04garbage\x00\xff", "is not a results table"),
        (b"just,a,header\n1,2,3\n", "has no column run_key"),
    ],
)
def test_leaderboard_refuses_a_damaged_results_file(
    finished: Path, tmp_path: Path, content: bytes, said: str
) -> None:
    root, run_dir = _copy(finished, tmp_path)
    (run_dir / "results.csv").write_bytes(content)
    refused(["leaderboard", "--results", str(root), "--out", str(tmp_path / "lb.csv")], said)
    assert not list(tmp_path.glob("lb*"))


def test_leaderboard_refuses_a_value_that_is_not_a_number(finished: Path, tmp_path: Path) -> None:
    root, run_dir = _copy(finished, tmp_path)
    frame = pd.read_csv(run_dir / "results.csv", dtype=str)
    frame.loc[0, "value"] = "abc"
    frame.to_csv(run_dir / "results.csv", index=False)
    refused(
        ["leaderboard", "--results", str(root), "--out", str(tmp_path / "lb.csv")],
        "column value holds 'abc', not a number",
    )


@pytest.mark.parametrize("status", [None, "{not json", '{"status": "running"}'])
def test_leaderboard_leaves_out_a_run_without_a_sound_status_with_a_warning(
    finished: Path, tmp_path: Path, status: str | None
) -> None:
    root, run_dir = _copy(finished, tmp_path)
    good = tmp_path / "runs" / "good"
    shutil.copytree(run_dir, good)
    if status is None:
        (run_dir / "status.json").unlink()
    else:
        (run_dir / "status.json").write_text(status)
    code, _, err = call(["leaderboard", "--results", str(root), "--out", str(tmp_path / "lb.csv")])
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 1 and str(run_dir) in lines[0] and "left out of the leaderboard" in lines[0], err
    board = pd.read_csv(tmp_path / "lb.csv")
    assert set(board["n"]) == {1}  # only the sound copy was aggregated


def test_leaderboard_reference_must_have_runs(finished: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "lb.csv")
    base = ["leaderboard", "--results", str(finished), "--out", out]
    refused(
        [*base, "--reference", "nosuch"], "no runs of method 'nosuch' in the results; their methods: lf_dnn"
    )
    refused(
        [*base, "--reference", "lf_dnn:nosuch"],
        "lf_dnn has no runs under policy 'nosuch'; its policies: matched",
    )
    assert not list(tmp_path.glob("lb*"))
    assert call([*base, "--reference", "lf_dnn:matched"])[0] == 0
    assert call([*base, "--reference", "none"])[0] == 0


def test_leaderboard_out_must_end_in_csv_or_md(finished: Path, tmp_path: Path) -> None:
    refused(
        ["leaderboard", "--results", str(finished), "--out", str(tmp_path / "lb.txt")],
        "give a file name ending in .csv",
    )
    assert not list(tmp_path.iterdir())


def test_leaderboard_results_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    refused(["leaderboard", "--results", str(tmp_path / "f"), "--out", str(tmp_path / "lb.csv")], "is a file")


# ------------------------------------------------------------------------------------------------ paths
def test_empty_paths_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    refused(
        ["run", "--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "--output", ""], "empty path"
    )
    refused(["data", "export", "synthetic", "--out", ""], "argument --out: an empty path")
    refused(["leaderboard", "--results", "", "--out", "lb.csv"], "argument --results: an empty path")
    assert not list(tmp_path.iterdir())


def test_data_path_that_is_a_directory(tmp_path: Path) -> None:
    args = ["run", "--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "--dataset", "mosi"]
    refused([*args, "--data-path", str(tmp_path), "--output", str(tmp_path / "runs")], "is a directory")
    refused([*args, "--data-root", str(tmp_path / "missing")], "does not exist")


def test_a_rate_may_be_given_as_a_fraction() -> None:
    from msabench.cli import build_parser

    args = build_parser().parse_args(["run", "--method", "lf_dnn", "--protocol", "inter", "--rate", "2/3"])
    assert args.rate == pytest.approx(2 / 3)
    refused(["run", "--method", "lf_dnn", "--protocol", "inter", "--rate", "2/0"], "'2/0' is not a number")


# ------------------------------------------------------------------------------------------------ python API
@pytest.mark.parametrize(
    ("kwargs", "said"),
    [
        ({"method": 5}, "method must be a name (a string), not 5"),
        ({"rate": [0.3]}, "rate must be a number, not [0.3]"),
        ({"rate": "abc"}, "rate must be a number, not 'abc'"),
        ({"rate": True}, "rate must be a number, not True"),
        ({"output": None}, "output must be a path (a string), not None"),
        ({"output": ""}, "output is empty"),
        ({"overrides": "trainer.max_epochs=1"}, "overrides must be a list of key=value strings or a mapping"),
        ({"overrides": [1]}, "overrides must hold key=value strings, not 1"),
        ({"seed": 1.5}, "seed must be an integer, not 1.5"),
        ({"max_epochs": "1"}, "max_epochs must be an integer, not '1'"),
        ({"dataset": None}, "dataset must be a name (a string), not None"),
    ],
)
def test_python_api_names_the_argument(kwargs: dict, said: str, tmp_path: Path) -> None:
    import msabench
    from msabench.errors import MSABenchError

    args = {"method": "lf_dnn", "protocol": "intra", "rate": 0.3, "output": str(tmp_path / "runs"), **kwargs}
    with pytest.raises(MSABenchError) as info:
        msabench.run(**args)
    assert said in str(info.value)
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------------------------ stages
def test_summary_tells_the_stages_apart(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text(
        json.dumps(
            {
                "status": "finished",
                "stages": [
                    {"name": "pretrain", "epochs": 4, "ckpt_epoch": 3, "max_epochs": 4},
                    {"name": "main", "epochs": 8, "ckpt_epoch": 7, "max_epochs": 8},
                ],
            }
        )
    )
    row = {
        "method": "if_mmin",
        "dataset": "synthetic",
        "train_policy": "conditions",
        "seed": 1111,
        "selection": "val:loss:min",
        "ckpt_epoch": 7,
        "epochs": 8,
        "params": 10,
        "wall_time_s": 1.0,
        "setting": "intra@0.3",
        "metric": "mae",
        "value": 1.0,
    }
    frame = pd.DataFrame([row])
    frame.attrs["run_dir"] = str(tmp_path)
    head = format_table(frame).splitlines()[0]
    assert "selected val:loss:min in each stage: pretrain at epoch 3 of 4, main at epoch 7 of 8" in head
    (tmp_path / "status.json").write_text(json.dumps({"status": "finished"}))  # a one-stage run
    assert "selected val:loss:min at epoch 7 of 8 |" in format_table(frame).splitlines()[0]


def test_max_epochs_caps_both_stages_and_the_status_records_each(tmp_path: Path) -> None:
    args = ["run", "--method", "mmin", "--protocol", "inter", "--condition", "ta", "--max-epochs", "1"]
    code, out, err = call([*args, "--output", str(tmp_path), "data.options.n_scale=0.05"])
    assert code == 0, err
    assert "in each stage: pretrain at epoch 1 of 1, main at epoch 1 of 1" in out
    (status,) = tmp_path.glob("*/status.json")
    stages = json.loads(status.read_text())["stages"]
    assert [(s["name"], s["epochs"], s["max_epochs"]) for s in stages] == [("pretrain", 1, 1), ("main", 1, 1)]
