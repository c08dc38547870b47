"""What a run shows as it trains: epoch lines as they happen in a log file, a bar in the run's terms."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from msabench import store
from msabench.core.messages import duration
from msabench.runner.console import EpochLines, RunProgressBar, StageView, result_lines
from msabench.runner.resume import ResumeClock


def _view(**kwargs: object) -> StageView:
    fields: dict[str, object] = {
        "name": "main",
        "index": 0,
        "count": 1,
        "later_epochs": 0,
        "monitor": "val/acc2_has0",
        "mode": "max",
        "clock": ResumeClock(before_s=0.0, started=time.time() - 75),
    }
    return StageView(**{**fields, **kwargs})  # type: ignore[arg-type]


def _trainer(epoch: int, max_epochs: int = 10, **metrics: float) -> SimpleNamespace:
    return SimpleNamespace(
        current_epoch=epoch,
        max_epochs=max_epochs,
        should_stop=False,
        sanity_checking=False,
        callback_metrics={k.replace("__", "/"): torch.tensor(v) for k, v in metrics.items()},
    )


def _epochs(lines: EpochLines, scores: list[float], max_epochs: int = 10) -> list[str]:
    """Drive the callback through epochs with these validation scores, as Lightning does; what it printed.

    Lightning reduces an epoch's training loss after the epoch-end hooks: the metrics an epoch's start
    sees are the previous epoch's.
    """
    err = io.StringIO()
    trainer = _trainer(0, max_epochs)
    with redirect_stderr(err):
        for epoch, score in enumerate(scores):
            trainer.current_epoch = epoch
            lines.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
            trainer.callback_metrics = {
                "train/loss": torch.tensor(1.0 / (epoch + 1)),
                lines.view.monitor: torch.tensor(score),
            }
            lines.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
        lines.on_train_end(trainer, None)  # type: ignore[arg-type]
    return err.getvalue().splitlines()


def test_one_line_per_epoch_counted_from_1_with_loss_score_best_elapsed_and_estimate() -> None:
    lines = _epochs(EpochLines(_view()), [0.6, 0.7123, 0.65])
    assert len(lines) == 3
    first, second, third = (line.split(" · ") for line in lines)
    assert first[:3] == ["epoch 1/10", "loss 1.0000", "val acc2_has0 60.00% (best 60.00% at 1)"]
    assert second[:3] == ["epoch 2/10", "loss 0.5000", "val acc2_has0 71.23% (best 71.23% at 2)"]
    assert third[2] == "val acc2_has0 65.00% (best 71.23% at 2)"
    assert third[3] == "1m15s elapsed"  # the run's clock: earlier attempts and this one's set-up included
    assert third[4].startswith("at most 0m00s left")  # 7 epochs of about no time each


def test_the_stage_is_named_and_its_best_counts_from_the_selectable_epochs() -> None:
    view = _view(name="pretrain", count=2, later_epochs=40, monitor="val/loss", mode="min", selection_from=3)
    lines = _epochs(EpochLines(view), [0.9, 0.5, 0.7, 0.6], max_epochs=5)
    assert lines[0].startswith("epoch 1/5 stage pretrain (1/2) · loss 1.0000 · val loss 0.9000 · ")
    assert " · val loss 0.5000 · " in lines[1]  # epoch 2 is better, but not selectable: no best yet
    assert " · val loss 0.7000 (best 0.7000 at 3) · " in lines[2]
    assert " · val loss 0.6000 (best 0.6000 at 4) · " in lines[3]


def test_the_bar_shows_the_runs_terms_and_no_lightning_fields() -> None:
    bar = RunProgressBar(_view(name="main", index=1, count=2))
    trainer = _trainer(2, 20, train__loss=0.25, val__acc2_has0=0.7, v_num=3.0)
    assert bar.get_metrics(trainer, None) == {"loss": "0.2500", "val acc2_has0": "70.00%"}  # type: ignore[arg-type]
    assert bar.view.label(3, 20) == "epoch 3/20 stage main (2/2)"


def test_result_lines_and_durations() -> None:
    assert result_lines({"intra@0.3": {"acc2_has0": 0.7, "mae": 0.91234}}) == [
        "test intra@0.3: acc2_has0 70.00% · mae 0.9123"
    ]
    assert [duration(s) for s in (0, 61.4, 3725)] == ["0m00s", "1m01s", "1h02m05s"]


def test_a_run_writing_to_a_file_says_each_epoch_as_it_ends(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    command = [
        sys.executable,
        "-m",
        "msabench.cli",
        *"run --method lf_dnn --protocol intra --rate 0.3".split(),
        *("data.options.n_scale=0.05", "trainer.max_epochs=4", "trainer.patience=null"),
        *("--output", str(tmp_path / "runs")),
    ]
    with log.open("w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=handle)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None:  # freeze it in its third epoch
            points = [store.read_resume(d) for d in store.staging_dirs(tmp_path / "runs")]
            if any(p and p["epochs"] >= 2 for p in points):
                os.kill(process.pid, signal.SIGSTOP)
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the run never reached its second epoch: {log.read_text()}")
        so_far = log.read_text()  # while the run is stopped mid-way: its first epochs are already there
        os.kill(process.pid, signal.SIGCONT)
    finally:
        process.wait(timeout=240)
    assert "epoch 1/4 · loss " in so_far and " · val loss " in so_far, so_far
    assert process.returncode == 0
    text = log.read_text()
    assert [line.split(" · ")[0] for line in text.splitlines() if line.startswith("epoch ")] == [
        f"epoch {k}/4" for k in range(1, 5)
    ]
    assert "test intra@0.3: acc2_has0 " in text
    for noise in ("v_num", "GPU available", "TPU available", "Epoch 0", "LOCAL_RANK"):
        assert noise not in text
