"""What a run shows while it trains: a bar on a terminal, one plain line per epoch anywhere else.

A log file (a cluster job's, a sweep worker's, ``msabench run ... > run.log``) gets one line per epoch as the
epoch ends and one per test setting, each flushed at once, so ``tail -f`` follows a run. A terminal gets
Lightning's bar, with epochs counted from 1, the stage, the last epoch's training loss and validation score,
and none of Lightning's own fields. The long silent stretches before training (generating the synthetic
data, re-encoding the fixed text views) are said by the data layer through the ``msabench`` logger
(:mod:`msabench.core.messages`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from msabench.core.messages import duration
from msabench.metrics import is_percent_metric
from msabench.runner.resume import ResumeClock


def uses_bar(enable_progress_bar: bool | None) -> bool:
    """Whether a run shows the bar (``trainer.enable_progress_bar``; null: on a terminal) or epoch lines."""
    return sys.stderr.isatty() if enable_progress_bar is None else bool(enable_progress_bar)


def metric_value(name: str, value: float) -> str:
    """A metric's value as the leaderboard shows it: accuracies and F1 in percent, the rest raw."""
    if not math.isfinite(value):
        return str(value)
    return f"{100 * value:.2f}%" if is_percent_metric(name) else f"{value:.4f}"


@dataclass(frozen=True)
class StageView:
    """Where a stage stands in its run: its name, its place, the epochs of the stages after it.

    Attributes:
        name: the stage's name (``main`` for a one-stage method).
        index: its place among the run's stages, from 0.
        count: how many stages the run has.
        later_epochs: the epoch caps of the stages after it (what the estimate adds).
        monitor: the validation metric that selects the checkpoint (``val/acc2_has0``).
        mode: ``max`` or ``min``.
        clock: the run's training time over its attempts.
        selection_from: the first epoch (from 1) whose score may be selected; earlier ones are not "best".
    """

    name: str
    index: int
    count: int
    later_epochs: int
    monitor: str
    mode: str
    clock: ResumeClock
    selection_from: int = 1

    def label(self, epoch: int, max_epochs: int) -> str:
        """``epoch 3/20``, with the stage named when the method has several."""
        stage = f" stage {self.name} ({self.index + 1}/{self.count})" if self.count > 1 else ""
        return f"epoch {epoch}/{max_epochs}{stage}"


class EpochLines(L.Callback):
    """One line per finished epoch on stderr: epoch, loss, validation score, elapsed, estimate.

    The line of an epoch is printed once Lightning has reduced the epoch's training loss, which it does
    after every epoch-end hook; so it goes out when the next epoch starts, or when the fit ends.
    """

    def __init__(self, view: StageView) -> None:
        super().__init__()
        self.view = view
        self._pending: int | None = None  # the finished epoch (from 1) whose line is due
        self._best: tuple[float, int] | None = None
        self._epoch_started = 0.0
        self._epoch_seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)
        self._epoch_started = time.time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._epoch_seconds.append(time.time() - self._epoch_started)
        self._pending = trainer.current_epoch + 1

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)

    def _flush(self, trainer: L.Trainer) -> None:
        if self._pending is None:
            return
        epoch, self._pending = self._pending, None
        metrics = trainer.callback_metrics
        parts = [self.view.label(epoch, int(trainer.max_epochs or 0))]
        loss = metrics.get("train/loss")
        if loss is not None:
            parts.append(f"loss {float(loss):.4f}")
        score = metrics.get(self.view.monitor)
        if score is not None:
            parts.append(self._score(float(score), epoch))
        parts.append(f"{duration(self.view.clock.elapsed())} elapsed")
        left = self._epochs_left(trainer, epoch)
        if left and self._epoch_seconds:
            per_epoch = sum(self._epoch_seconds) / len(self._epoch_seconds)
            parts.append(f"at most {duration(left * per_epoch)} left")
        print(" · ".join(parts), file=sys.stderr, flush=True)

    def _score(self, value: float, epoch: int) -> str:
        """``val acc2_has0 70.12% (best 71.00% at 2)``: the selection metric and its best epoch so far."""
        best = self._best
        if best is None:
            improved = True
        else:
            improved = value > best[0] if self.view.mode == "max" else value < best[0]
        if improved and math.isfinite(value) and epoch >= self.view.selection_from:
            self._best = best = (value, epoch)
        name = self.view.monitor.removeprefix("val/")
        text = f"val {name} {metric_value(name, value)}"
        return text + (f" (best {metric_value(name, best[0])} at {best[1]})" if best else "")

    def _epochs_left(self, trainer: L.Trainer, epoch: int) -> int:
        """Epochs up to the caps of this stage and the later ones (early stopping may end them sooner)."""
        if trainer.should_stop:
            return self.view.later_epochs
        return max(0, int(trainer.max_epochs or 0) - epoch) + self.view.later_epochs


class RunProgressBar(TQDMProgressBar):
    """Lightning's bar, told in the run's terms: ``epoch 3/20``, last epoch's loss and score, no ``v_num``."""

    def __init__(self, view: StageView) -> None:
        super().__init__()
        self.view = view

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self.train_progress_bar.set_description(
            self.view.label(trainer.current_epoch + 1, int(trainer.max_epochs or 0))
        )

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        metrics = trainer.callback_metrics
        if "train/loss" in metrics:
            shown["loss"] = f"{float(metrics['train/loss']):.4f}"
        if self.view.monitor in metrics:
            name = self.view.monitor.removeprefix("val/")
            shown["val " + name] = metric_value(name, float(metrics[self.view.monitor]))
        return shown


def result_lines(results: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per test setting: every metric, as the leaderboard shows it."""
    return [
        f"test {setting}: " + " · ".join(f"{k} {metric_value(k, v)}" for k, v in values.items())
        for setting, values in results.items()
    ]
