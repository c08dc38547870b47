"""The command line: the main job end to end, and every user mistake as one line, exit 2, nothing written."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msabench.cli import main
from msabench.store import RESULT_COLUMNS

FAST = ["trainer.max_epochs=1", "data.options.n_scale=0.05", "data.batch_size=16"]


def test_run_writes_config_checkpoint_and_tidy_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "--method",
            "LF-DNN",
            "--protocol",
            "intra",
            "--rate",
            "0.3",
            "--output",
            str(tmp_path),
            *FAST,
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "intra@0.3" in out and "acc2_has0 (%)" in out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert {"config.yaml", "model.ckpt", "results.csv", "status.json"} <= {p.name for p in run_dir.iterdir()}
    frame = pd.read_csv(run_dir / "results.csv")
    assert list(frame.columns) == list(RESULT_COLUMNS)
    assert set(frame["metric"]) == {
        "acc2_has0",
        "f1_has0",
        "acc2_non0",
        "f1_non0",
        "acc5",
        "acc7",
        "mae",
        "corr",
    }
    row = frame.iloc[0]
    assert (row["dataset"], row["method"], row["train_policy"], row["protocol"]) == (
        "synthetic",
        "lf_dnn",
        "matched",
        "intra",
    )
    assert row["rate"] == 0.3 and row["seed"] == 1111 and row["mask_seed"] == 1111
    assert isinstance(row["data_sha256"], str) and len(row["data_sha256"]) == 64


def test_second_identical_run_is_reused_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "run",
        "--method",
        "lf_dnn",
        "--protocol",
        "inter",
        "--condition",
        "ta",
        "--output",
        str(tmp_path),
        *FAST,
    ]
    assert main(args) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    before = (run_dir / "results.csv").read_bytes()
    assert main(args) == 0
    assert "reused" in capsys.readouterr().out
    assert (run_dir / "results.csv").read_bytes() == before
    assert main([*args, "--rerun"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and any(".replaced-" in n for n in names)  # the old run is kept, renamed


MISSING_FILE = "/nonexistent/unaligned_50.pkl"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "nope", "--protocol", "intra", "--rate", "0.3"], "unknown method 'nope'"),
        (["--method", "lf_dnn", "--protocol", "sideways", "--rate", "0.3"], "unknown protocol"),
        (["--method", "lf_dnn", "--protocol", "intra", "--rate", "1.5"], "out of range for intra"),
        (["--method", "lf_dnn", "--protocol", "inter", "--rate", "0.7"], "out of range for inter"),
        (["--method", "lf_dnn", "--protocol", "inter", "--condition", "tx"], "invalid condition 'tx'"),
        (["--method", "lf_dnn", "--protocol", "inter", "--condition", ""], "invalid condition"),
        (["--method", "lf_dnn", "--protocol", "intra"], "needs --rate"),
        (
            ["--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "--dataset", "mosx"],
            "unknown dataset",
        ),
        (
            ["--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "--train-policy", "random"],
            "unknown training policy",
        ),
        (
            ["--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "trainer.max_epoch=2"],
            "Did you mean 'trainer.max_epochs'",
        ),
        (
            [*"--method lf_dnn --protocol intra --rate 0.3 --dataset mosi --data-path".split(), MISSING_FILE],
            MISSING_FILE,
        ),
        (
            ["--method", "derl", "--protocol", "intra", "--rate", "0.3", "model.encoder_heads=7"],
            "derl config: encoder_heads (7) must divide the hidden width (128)",
        ),
        (
            ["--method", "mitr_dnet", "--protocol", "intra", "--rate", "0.3", "model.flip_axis=depth"],
            "model.flip_axis must be one of channel, time, not 'depth'",
        ),
        (
            ["--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "optim.name=sgd"],
            "unknown optim.name 'sgd'",
        ),
        (
            ["--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3", "optim.scheduler.name=step"],
            "unknown optim.scheduler.name 'step'",
        ),
        (
            ["--method", "umdf", "--protocol", "intra", "--rate", "0.3", "loss.regression=huber"],
            "unknown loss.regression 'huber'",
        ),
    ],
)
def test_user_mistakes_are_one_line_with_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", *args, "--output", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    *before, last = err.splitlines()
    assert last.startswith("error: ") and "Traceback" not in err
    # Before it, at most what a first run says of its data as it makes them (then the error needs the data).
    assert all(line.startswith(PROGRESS) for line in before), err
    assert not (tmp_path / "runs").exists()  # nothing written to the results store


PROGRESS = ("generating the synthetic data", "re-encoding the ")


def _write_pickle(path: Path, payload: object) -> Path:
    path.write_bytes(pickle.dumps(payload))
    return path


def test_bad_data_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_mmsa = _write_pickle(tmp_path / "list.pkl", [1, 2, 3])
    nan_labels = tmp_path / "nan.pkl"
    main(["data", "export", "synthetic", "--out", str(nan_labels), "--seed", "3"])
    data = pickle.loads(nan_labels.read_bytes())
    data["train"]["regression_labels"] = np.full_like(data["train"]["regression_labels"], np.nan)
    _write_pickle(nan_labels, data)
    capsys.readouterr()
    for path, message in [(not_mmsa, "not an MMSA pickle"), (nan_labels, "NaN")]:
        flags = "run --method lf_dnn --protocol intra --rate 0.3 --dataset mosi".split()
        code = main([*flags, "--data-path", str(path), "--output", str(tmp_path / "runs")])
        err = capsys.readouterr().err
        assert code == 2, err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_list_shows_methods_datasets_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("lf_dnn", "synthetic", "synthetic-iemocap", "mosi", "lnln", "stochastic", "paper", "intra"):
        assert word in out


def test_console_script_reports_error_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "msabench.cli",
            "run",
            "--method",
            "derlx",
            "--protocol",
            "intra",
            "--rate",
            "0.3",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown method 'derlx'") and "Traceback" not in proc.stderr


def test_python_api_returns_dataframe(tmp_path: Path) -> None:
    import msabench

    frame = msabench.run(
        method="lf_dnn",
        protocol="intra",
        rate=0.6,
        output=tmp_path,
        trainer__max_epochs=1,
        overrides={"data.options.n_scale": 0.05},
    )
    assert isinstance(frame, pd.DataFrame)
    assert set(frame["setting"]) == {"intra@0.6"} and frame["value"].notna().all()
