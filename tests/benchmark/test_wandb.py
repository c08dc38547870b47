"""W&B: mode resolution without network, offline runs read back from disk, and no run ever fails because of
W&B."""

from __future__ import annotations

import json
import struct
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from msabench import leaderboard as lb
from msabench.protocols import Setting
from msabench.runner import wandb_logging as wl

TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.patience=null",
    "data.batch_size=8",
    "data.eval_batch_size=32",
    "data.options.n_scale=0.05",
]


def _records(run_dir: Path, timeout_s: float = 60.0) -> list[Any]:
    """The records of an offline run, once W&B's service process has written its ``exit`` record.

    ``run.finish()`` returns before the service has flushed the last records to ``run-<id>.wandb``.
    """
    deadline = time.time() + timeout_s
    while True:
        records = _parse(run_dir)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.time() > deadline:
            return records
        time.sleep(0.2)


def _parse(run_dir: Path) -> list[Any]:
    """The records of ``run-<id>.wandb`` (W&B's LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, chunk, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def _keys(records: list[Any], kind: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in records:
        if r.WhichOneof("record_type") != kind:
            continue
        items = r.history.item if kind == "history" else r.summary.update
        out.update({item.key or "/".join(item.nested_key): item.value_json for item in items})
    return out


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_mode_resolution_never_contacts_a_server(
    no_credentials: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert wl.resolve_mode() == "offline"  # no key anywhere: offline, never a prompt
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc123\n")
    (home / ".netrc").chmod(0o600)
    assert wl.has_credentials() and wl.resolve_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wl.resolve_mode() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wl.resolve_mode() == "disabled"
    assert wl.start_run(project="p", name="n", save_dir=tmp_path) is None


def test_online_failure_falls_back_to_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import wandb

    modes: list[str] = []

    class FakeRun:
        def define_metric(self, *args: Any, **kwargs: Any) -> None:
            pass

    def fake_init(mode: str, **kwargs: Any) -> FakeRun:
        modes.append(mode)
        if mode == "online":
            raise TimeoutError("no network")
        return FakeRun()

    monkeypatch.setattr(wandb, "init", fake_init)
    with pytest.warns(wl.WandbWarning, match="online start failed"):
        run = wl.start_run(project="p", name="n", save_dir=tmp_path, mode="online")
    assert isinstance(run, FakeRun) and modes == ["online", "offline"]


def _execute(tmp_path: Path, **kw: Any) -> pd.DataFrame:
    from msabench.runner import RunRequest, execute

    settings = [Setting("intra", rate=0.0), Setting("intra", rate=0.5), Setting("condition", condition="ta")]
    return execute(
        RunRequest(
            method="lf_dnn",
            settings=settings,
            train_policy="complete",
            overrides=TINY,
            output=tmp_path,
            extra_blocks=("smoke",),
            wandb=True,
            **kw,
        )
    )


def test_offline_run_logs_config_curves_and_test_table(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    frame = _execute(tmp_path, sweep_id="quick-1234abcd")
    run_dir = Path(frame.attrs["run_dir"])
    records = _records(run_dir)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.run_group == "quick-1234abcd" and set(run.tags) == {"synthetic", "lf_dnn", "complete"}
    # The id follows the staging directory, which a resumed attempt adopts under its name: one W&B run.
    staged = json.loads((run_dir / "status.json").read_text())["attempt"]
    assert run.run_id == wl.run_id(Path(f"{run_dir.name}.{staged}"))
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["method"]["name"] == "lf_dnn" and config["data"]["options"]["n_scale"] == 0.05
    assert (
        config["test_settings"] == ["intra@0", "intra@0.5", "condition:ta"] and len(config["run_key"]) == 16
    )
    history = _keys(records, "history")
    assert (
        "train/loss" in history and "val/loss" in history
    )  # training curves through Lightning's WandbLogger
    assert "test/results/path" in history and "test/intra_vs_rate_table/path" in history
    summary = _keys(records, "summary")
    mae = frame[(frame["setting"] == "condition:ta") & (frame["metric"] == "mae")]["value"].item()
    assert float(summary["test/condition:ta/mae"]) == pytest.approx(mae)
    (table,) = run_dir.glob("wandb/offline-run-*/files/media/table/test/results_*.table.json")
    logged = json.loads(table.read_text())
    assert len(logged["data"]) == frame["metric"].notna().sum() and "setting" in logged["columns"]


def test_wandb_errors_never_fail_a_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import wandb

    def broken_init(**kwargs: Any) -> None:
        raise RuntimeError("wandb is broken")

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(wandb, "init", broken_init)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = _execute(tmp_path)
    assert set(frame["status"]) == {"finished"}
    assert any(issubclass(w.category, wl.WandbWarning) for w in caught)


def test_leaderboard_logged_offline_with_plots(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    rows = [
        {
            "run_key": f"k{s}",
            "status": "finished",
            "error": None,
            "dataset": "synthetic",
            "data_sha256": "x",
            "method": "derl",
            "train_policy": "lnln",
            "protocol": "intra",
            "rate": r,
            "condition": None,
            "setting": f"intra@{r:g}",
            "seed": s,
            "mask_seed": 1111,
            "metric": "mae",
            "value": 0.8 + r + s / 100,
            "metric_family": "mosi",
            "selection": "val:loss:min",
        }
        for s in (1, 2)
        for r in (0.0, 0.5)
    ]
    board = lb.build(pd.DataFrame(rows), None)
    plots = lb.write(board, tmp_path / "lb.csv", "csv", tmp_path / "plots")
    run = wl.log_leaderboard(board, [p for p in plots if p.suffix == ".png"], tmp_path, source="runs")
    assert run is not None
    history = _keys(_records(tmp_path), "history")
    assert "leaderboard/wide/path" in history and "leaderboard/summaries/path" in history
    assert "plots/synthetic__intra__mae/path" in history
