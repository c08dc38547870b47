"""A run that outlives its attempt: the training state saved every epoch, and what a later attempt reads back.

An attempt can die at any time: a preempted cluster job, a lost node, a session that ends. At the end of
every epoch the stage in training saves its whole state (weights, optimizer, schedulers, loop counters, the
selection checkpoint's and early stopping's state, torch's random generators), and the attempt records the
resume point in its staging directory (:func:`msabench.store.write_resume`). A finished stage leaves a
record of what it selected. The next attempt at the same run, on the same code, adopts the staging directory
(:class:`msabench.store.Attempt`): its stages skip what finished, and the stage in training carries on from
its last epoch. A training step draws no randomness from outside torch (the shuffle and the policy's masks are
functions of (seed, epoch)), so a resumed run is the run that was never stopped; the runner's tests check this
number for number.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch

from msabench import store
from msabench.core.io import atomic_write
from msabench.runner.identity import source_digest

CHECKPOINTS = "checkpoints"


def code_identity() -> str:
    """The code a resume point belongs to (its Python source): only the same code may carry a run on."""
    return f"source-sha256:{source_digest()[:16]}"


@dataclass
class ResumeClock:
    """The seconds a run has trained over all its attempts.

    Attributes:
        before_s: what earlier attempts spent, up to the resume point this attempt adopted.
        started: when this attempt started (``time.time()``).
    """

    before_s: float = 0.0
    started: float = field(default_factory=time.time)

    def elapsed(self) -> float:
        """Seconds so far, earlier attempts included."""
        return self.before_s + time.time() - self.started


@dataclass(frozen=True)
class ResumeContext:
    """What an attempt's stages need to leave resume points.

    Attributes:
        record: what every resume point names: the run (its directory's name), the code
            (:func:`code_identity`) and the attempt.
        clock: the run's training time over its attempts.
    """

    record: dict[str, Any]
    clock: ResumeClock


@contextlib.contextmanager
def carried_log(metrics_csv: Path, epochs: int | None) -> Iterator[None]:
    """Keep a resumed stage's validation curve whole across attempts.

    Lightning's CSV logger starts its file afresh; the rows of the ``epochs`` the resume point holds are set
    aside for the fit and put back in front of the new ones after it. Rows past the resume point (an epoch
    the dead attempt had begun) go: that epoch is trained again. None (a fresh stage) changes nothing. One row
    cannot be carried: Lightning logs an epoch's mean training loss after the point of that epoch is saved, so
    the curve lacks the training loss of the epoch the run resumed after (its validation row is there).
    """
    if epochs is None or not metrics_csv.exists():
        yield
        return
    earlier = pd.read_csv(metrics_csv)
    earlier = earlier[earlier["epoch"] < epochs] if "epoch" in earlier else earlier
    metrics_csv.unlink()
    try:
        yield
    finally:
        later = pd.read_csv(metrics_csv) if metrics_csv.exists() else earlier.iloc[:0]
        atomic_write(metrics_csv, pd.concat([earlier, later], ignore_index=True).to_csv(index=False))


@dataclass(frozen=True)
class StagePoints:
    """Where one stage keeps its resume checkpoint and its record of a finished fit.

    Attributes:
        run_dir: the attempt's staging directory.
        stage: the stage's name.
    """

    run_dir: Path
    stage: str

    @property
    def selected(self) -> Path:
        """The stage's selected weights (its selection checkpoint)."""
        return self.run_dir / CHECKPOINTS / f"{self.stage}.ckpt"

    def checkpoint(self, epochs: int) -> Path:
        """The stage's whole training state after ``epochs`` epochs."""
        return self.run_dir / CHECKPOINTS / f"{self.stage}.resume-e{epochs:04d}.ckpt"

    @property
    def done(self) -> Path:
        """The record of the stage's finished fit: what :func:`~msabench.runner.stages.fit_stages` reports."""
        return self.run_dir / CHECKPOINTS / f"{self.stage}.done.json"

    def resume_from(self) -> tuple[Path, int] | None:
        """The checkpoint the stage carries on from and its epochs, or None when it has none.

        The resume point names its checkpoint, and a checkpoint goes only after a newer point names another,
        so a death at any instant leaves the point and its checkpoint in step.
        """
        record = store.read_resume(self.run_dir)
        if record is None or record.get("stage") != self.stage:
            return None
        path = self.run_dir / CHECKPOINTS / str(record.get("checkpoint"))
        return (path, int(record["epochs"])) if path.is_file() else None

    def drop_checkpoints(self, keep: Path | None = None) -> None:
        """Remove the stage's resume checkpoints, all but ``keep``."""
        for path in self.run_dir.glob(f"{CHECKPOINTS}/{self.stage}.resume-e*.ckpt"):
            if path != keep:
                path.unlink(missing_ok=True)

    def finished(self) -> dict[str, Any] | None:
        """The finished fit's record, or None when the stage has not finished."""
        try:
            return dict(json.loads(self.done.read_text()))
        except FileNotFoundError:
            return None

    def mark_finished(self, info: dict[str, Any]) -> None:
        """Record the finished fit, then drop its resume checkpoints: a later attempt skips the stage."""
        atomic_write(self.done, json.dumps(info, indent=2, default=str))
        self.drop_checkpoints()


class ResumePoint(L.Callback):
    """Saves the stage's whole training state at the end of every epoch and records the resume point.

    Args:
        points: the stage's checkpoint paths.
        record: what the resume point names besides the stage and epoch (the run, the code, the attempt).
        clock: the run's training time over its attempts.
    """

    def __init__(self, points: StagePoints, record: dict[str, Any], clock: ResumeClock) -> None:
        super().__init__()
        self.points = points
        self.record = record
        self.clock = clock

    @property
    def state_key(self) -> str:
        return "ResumePoint"

    def state_dict(self) -> dict[str, Any]:
        # Dropout and every other draw of a training step come from torch's generators; restoring them makes
        # the epochs after a resume the epochs the stopped attempt would have trained.
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Here the epoch's validation, selection and early stopping are done and its scheduler step is not:
        # Lightning resumes a checkpoint from this point at the next epoch, scheduler step included.
        if trainer.sanity_checking or getattr(trainer, "fast_dev_run", False):
            return
        for logger in trainer.loggers:  # the curve so far is on disk before the point that resumes after it
            logger.save()
        epochs = trainer.current_epoch + 1
        target = self.points.checkpoint(epochs)
        partial = target.with_name(target.name + ".partial")
        trainer.save_checkpoint(partial)
        os.replace(partial, target)
        store.write_resume(
            self.points.run_dir,
            **self.record,
            stage=self.points.stage,
            epochs=epochs,
            checkpoint=target.name,
            elapsed_s=self.clock.elapsed(),
            saved=time.time(),
        )
        self.points.drop_checkpoints(keep=target)
