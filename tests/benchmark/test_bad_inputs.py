"""Malformed values for every flag and override kind of run, sweep, leaderboard and data export (issue 21).

Each call either succeeds or exits 2 with one ``error:`` line (``warning:`` lines may precede it), never a
traceback; a refused call writes nothing under the results root, and no call changes another run's files.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msabench.cli import main

FAST = ["data.options.n_scale=0.05", "trainer.fast_dev_run=true"]
VALUES = (
    "-5",
    "0",
    "-1",
    "1e12",
    "99999999999999999999",
    "nan",
    "inf",
    "",
    "abc",
    "[1, 2]",
    "{a: 1}",
    "null",
)
PATHS = ("MISSING", "/proc/msabench/x", "FILE", "DIR")
OVERRIDES = (
    "seed",
    "trainer.max_epochs",
    "trainer.patience",
    "trainer.precision",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.limit_train_batches",
    "trainer.gradient_clip_val",
    "data.batch_size",
    "data.eval_batch_size",
    "data.num_workers",
    "data.options.n_scale",
    "data.options.data_seed",
    "evaluation.mask_seed",
    "evaluation.validation_rate",
    "optim.lr",
    "optim.weight_decay",
    "optim.betas",
    "loss.regression",
    "selection.metric",
    "selection.mode",
    "model.hidden_text",
    "model.dropout_post",
    "policy.resample",
    "no_such.key",
)
RUN_FLAGS = ("--method", "--protocol", "--rate", "--condition", "--seed", "--dataset", "--train-policy")
RUN_PATH_FLAGS = ("--data-path", "--data-root", "--output")


def call(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
    return code, err.getvalue()


def snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for name in ("results.csv", "status.json") for p in root.rglob(name)}


def check(code: int, err: str, root: Path, before: dict[Path, bytes]) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 2), err
    if code == 2:
        lines = err.strip().splitlines()
        assert [line for line in lines if not line.startswith("warning: ")] == [lines[-1]], err
        assert lines[-1].startswith("error: "), err
        assert set(snapshot(root)) == set(before), "a refused call wrote into the results root"
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} changed"
    for status in root.rglob("status.json"):
        record = json.loads(status.read_text())
        if record["status"] == "finished":
            assert {"results.csv", "model.ckpt", "config.yaml"} <= {p.name for p in status.parent.iterdir()}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root with one finished run, which no later call may change."""
    root = tmp_path_factory.mktemp("store")
    args = [
        "run",
        "--method",
        "lf_dnn",
        "--protocol",
        "intra",
        "--rate",
        "0.3",
        "--output",
        str(root / "runs"),
    ]
    code, err = call([*args, *FAST])
    assert code == 0, err
    (root / "a_file").write_bytes(b"\x80\x04not text, not a directory")
    (root / "a_dir").mkdir()
    return root


def _value(draw: st.DrawFn, store: Path, path_like: bool) -> str:
    value = draw(st.sampled_from(PATHS if path_like else VALUES))
    named = {"FILE": store / "a_file", "MISSING": store / "missing" / "x", "DIR": store / "a_dir"}
    return str(named.get(value, value))


@st.composite
def run_args(draw: st.DrawFn, store: Path) -> list[str]:
    flags = {"--method": "lf_dnn", "--protocol": "intra", "--rate": "0.3", "--output": str(store / "runs")}
    overrides = list(FAST)
    kind = draw(st.sampled_from(("flag", "path", "override", "malformed")))
    if kind == "flag":
        flags[draw(st.sampled_from(RUN_FLAGS))] = _value(draw, store, False)
    elif kind == "path":
        flags[draw(st.sampled_from(RUN_PATH_FLAGS))] = _value(draw, store, True)
    elif kind == "override":
        overrides.append(f"{draw(st.sampled_from(OVERRIDES))}={_value(draw, store, False)}")
    else:
        overrides.append(draw(st.sampled_from(OVERRIDES)))  # no `=`
    return ["run", *[x for kv in flags.items() for x in kv], *overrides]


@settings(max_examples=45, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_run_with_one_malformed_value(store: Path, data: st.DataObject) -> None:
    args = data.draw(run_args(store))
    before = snapshot(store)
    code, err = call(args)
    check(code, err, store, before)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    flag=st.sampled_from(
        (
            "--config",
            "--methods",
            "--datasets",
            "--protocols",
            "--rates",
            "--conditions",
            "--seeds",
            "--train-policy",
            "--workers",
            "--output",
            "override",
        )
    ),
    data=st.data(),
)
def test_sweep_with_one_malformed_value(store: Path, flag: str, data: st.DataObject) -> None:
    flags = {
        "--methods": "lf_dnn",
        "--rates": "intra=0.3",
        "--seeds": "1111",
        "--workers": "0",
        "--output": str(store / "runs"),
    }
    overrides = list(FAST)
    if flag == "override":
        overrides.append(f"{data.draw(st.sampled_from(OVERRIDES))}={_value(data.draw, store, False)}")
    else:
        path_like = flag in ("--config", "--output")
        value = _value(data.draw, store, path_like)
        # A process per worker costs seconds and tests nothing more here: positive counts run inline.
        flags[flag] = "0" if flag == "--workers" and value.isdigit() else value
    before = snapshot(store)
    code, err = call(["sweep", *[x for kv in flags.items() for x in kv], *overrides])
    check(code, err, store, before)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    flag=st.sampled_from(("--results", "--out", "--format", "--reference", "--seeds", "--plots")),
    data=st.data(),
)
def test_leaderboard_with_one_malformed_value(store: Path, flag: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        flags = {"--results": str(store / "runs"), "--out": f"{scratch}/board.csv"}
        flags[flag] = _value(data.draw, store, flag in ("--results", "--out", "--plots"))
        before = snapshot(store)
        code, err = call(["leaderboard", *[x for kv in flags.items() for x in kv]])
        check(code, err, store, before)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(flag=st.sampled_from(("name", "--out", "--seed")), data=st.data())
def test_data_export_with_one_malformed_value(store: Path, flag: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        args = {"name": "synthetic", "--out": f"{scratch}/x.pkl", "--seed": "-1"}  # refused unless replaced
        value = _value(data.draw, store, flag == "--out")
        if flag == "--seed" and value.isdigit():
            value = str(2**32)  # a valid seed would write a full-size data set (seconds, 300 MB)
        args[flag] = value
        if flag != "--seed" and args["--seed"] == "-1":
            args["--seed"] = "abc"
        code, err = call(["data", "export", args["name"], "--out", args["--out"], "--seed", args["--seed"]])
        check(code, err, store, snapshot(store))
        assert code == 2


# ---------------------------------------------------------------------------------------------------------
# The four inputs of issue 21


def test_negative_seed_is_one_line(tmp_path: Path) -> None:
    code, err = call(
        [
            "run",
            "--method",
            "lf_dnn",
            "--protocol",
            "intra",
            "--rate",
            "0.3",
            "--seed",
            "-5",
            "--output",
            str(tmp_path / "runs"),
        ]
    )
    assert (code, err) == (2, "error: seed must be an integer from 0 to 4294967295, not -5\n")
    assert not (tmp_path / "runs").exists()


def test_output_that_cannot_be_made_is_one_line() -> None:
    code, err = call(
        [
            "run",
            "--method",
            "lf_dnn",
            "--protocol",
            "intra",
            "--rate",
            "0.3",
            "--output",
            "/proc/msabench/runs",
            *FAST,
        ]
    )
    assert code == 2 and err.startswith("error: --output /proc/msabench/runs: cannot write into /proc")
    assert err.count("\n") == 1


@pytest.fixture(scope="module")
def small_mosi(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import importlib.util

    fake_path = Path(__file__).parents[1] / "data" / "make_fake_data.py"
    spec = importlib.util.spec_from_file_location("make_fake_data", fake_path)
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    rng = np.random.default_rng(5)
    return {s: fake.mmsa_split(n, rng) for s, n in {"train": 24, "valid": 8, "test": 8}.items()}


def test_nan_in_audio_runs_with_a_recorded_warning(small_mosi: dict, tmp_path: Path) -> None:
    data = {s: dict(v) for s, v in small_mosi.items()}
    audio = data["train"]["audio"].copy()
    audio[:5, 0, :2] = np.nan
    data["train"]["audio"] = audio
    path = tmp_path / "nan.pkl"
    path.write_bytes(pickle.dumps(data))
    args = [
        "run",
        "--method",
        "lf_dnn",
        "--protocol",
        "inter",  # whole modalities: the contextual text needs no encoder
        "--rate",
        "0.3",
        "--dataset",
        "mosi",
        "--data-path",
        str(path),
        "--output",
        str(tmp_path / "runs"),
        "trainer.fast_dev_run=true",
    ]
    code, err = call(args)
    assert code == 0, err
    said = f"{path} [train]: 'audio' had 10 NaN values (in 5 of 24 samples); replaced by 0"
    assert f"warning: {said}\n" in err
    (status,) = (tmp_path / "runs").glob("*/status.json")
    record = json.loads(status.read_text())
    assert record["status"] == "finished" and said in record["warnings"]


def test_mosi_labels_read_as_sims_are_refused(small_mosi: dict, tmp_path: Path) -> None:
    path = tmp_path / "mosi.pkl"
    path.write_bytes(pickle.dumps(small_mosi))
    args = [
        "run",
        "--method",
        "lf_dnn",
        "--protocol",
        "intra",
        "--rate",
        "0.3",
        "--dataset",
        "sims",
        "--data-path",
        str(path),
        "--output",
        str(tmp_path / "runs"),
    ]
    code, err = call(args)
    assert code == 2, err
    assert err.splitlines()[-1].startswith(f"error: {path} [train]: 'regression_labels' spans [")
    assert "outside [-1, 1] of the sims family it is read as (sims); they fit the mosi family" in err
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------------------------------------
# Issue 37: the Python API and sweep files, each value drawn from everything a user might pass

API_VALUES = (
    None,
    True,
    0,
    -1,
    5,
    0.3,
    float("nan"),
    "",
    "abc",
    "0.3",
    [0.3],
    ["trainer.max_epochs=1"],
    "trainer.max_epochs=1",
    {"trainer.max_epochs": 1},
    {"no_such.key": 1},
    Path("."),
)
API_ARGUMENTS = (
    "method",
    "protocol",
    "rate",
    "condition",
    "dataset",
    "data_path",
    "data_root",
    "seed",
    "train_policy",
    "text_view",
    "output",
    "overrides",
    "rerun",
    "max_epochs",
)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(argument=st.sampled_from(API_ARGUMENTS), value=st.sampled_from(API_VALUES))
def test_python_api_with_one_malformed_argument(store: Path, argument: str, value: object) -> None:
    """``msabench.run`` either runs or raises one msabench error naming what is wrong, never another one."""
    import msabench
    from msabench.errors import MSABenchError

    kwargs: dict = {"method": "lf_dnn", "protocol": "intra", "rate": 0.3, "output": str(store / "runs")}
    kwargs[argument] = value
    if argument == "output" and isinstance(value, str | Path) and str(value):
        # A valid relative path ("0.3", ".") would put a run in the current directory: keep it in the store.
        kwargs["output"] = str(store / "runs" / value)
    fast = {"data.options.n_scale": 0.05, "trainer.fast_dev_run": True}
    if argument != "overrides":
        kwargs["overrides"] = fast
    before = snapshot(store)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            msabench.run(**kwargs)
        except MSABenchError as err:
            assert "\n" not in str(err).strip(), err
            assert set(snapshot(store)) == set(before), "a refused call wrote into the results root"
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} changed"


YAML_LEAVES = (
    "lf_dnn",
    "all",
    "nosuch",
    "''",
    "[]",
    "{}",
    "null",
    "0.3",
    "'0:1:0.5'",
    "'1113:1111'",
    "'0:0.5:1e-7'",
    "[1111, x]",
    "{intra: 0.3}",
    "{trainer.max_epochs: 1}",
    "[trainer.max_epochs=0]",
    "[no_such.key=1]",
    "-3",
    "true",
    "'a: b: c'",
)
YAML_KEYS = ("grid", "overrides", "blocks", "workers", "output", "description", "nosuch")
GRID_KEYS = ("methods", "datasets", "protocols", "rates", "conditions", "seeds", "train_policy", "metods")


@st.composite
def sweep_files(draw: st.DrawFn) -> str:
    """A sweep file with one or two malformed parts: a top-level key, a grid leaf, or raw text."""
    grid = {"methods": "lf_dnn", "rates": "'0.3'", "seeds": "1111"}
    top = {"overrides": "[data.options.n_scale=0.05, trainer.fast_dev_run=true]"}
    for _ in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            grid[draw(st.sampled_from(GRID_KEYS))] = draw(st.sampled_from(YAML_LEAVES))
        else:
            top[draw(st.sampled_from(YAML_KEYS))] = draw(st.sampled_from(YAML_LEAVES))
    if "grid" in top:
        body = "\n".join(f"{k}: {v}" for k, v in top.items())
    else:
        leaves = ", ".join(f"{k}: {v}" for k, v in grid.items())
        body = "\n".join([f"grid: {{{leaves}}}", *(f"{k}: {v}" for k, v in top.items())])
    if draw(st.integers(0, 9)) == 0:  # now and then, text that is not a sweep file at all
        body = draw(st.sampled_from(("", "- a\n- b", "grid: [", "\x00\x01", "grid:\n  - 5\n", ": :")))
    return body + "\n"


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(text=sweep_files())
def test_sweep_file_with_malformed_parts(store: Path, text: str) -> None:
    """A sweep file either expands (a dry run lists it) or is refused in one line, never a traceback."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "sweep.yaml"
        path.write_text(text)
        before = snapshot(store)
        code, err = call(["sweep", "--config", str(path), "--dry-run", "--output", str(store / "runs")])
        check(code, err, store, before)
