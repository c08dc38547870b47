"""The Lightning Trainer, built from the typed ``trainer`` block, and a quiet console."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig

from msabench.config.schema import plain_dict
from msabench.metrics import UndefinedMetricWarning
from msabench.runner.console import uses_bar
from msabench.runner.memory import ReleaseFreedMemory

# Keys of the `trainer` block that are not Trainer arguments: early stopping's patience (a callback of the
# stages), and the progress bar, whose null means "on for a terminal".
_NOT_PASSED = ("patience", "enable_progress_bar")


def build_trainer(
    cfg: DictConfig,
    run_dir: Path,
    callbacks: list[Any],
    logger: Any,
    profiler: Any = None,
    bar: bool | None = None,
) -> L.Trainer:
    """A Trainer from ``cfg.trainer``, every key passed as it is; a null leaves Lightning's default.

    Fixed for every run: no sanity validation steps, no model summary.

    Args:
        cfg: the run's (or stage's) config.
        run_dir: where Lightning may write (its default root).
        callbacks: the fit's or test's callbacks.
        logger: Lightning loggers, or False.
        profiler: a Lightning profiler, or None.
        bar: show a progress bar (None: as ``trainer.enable_progress_bar`` says; null there: on a terminal).
            A fit passes its own bar in ``callbacks``, or epoch lines instead.
    """
    quiet_lightning()  # every Trainer, the one a sweep's driver builds to check the configs included
    block = plain_dict(cfg.trainer)
    arguments = {k: v for k, v in block.items() if k not in _NOT_PASSED and v is not None}
    return L.Trainer(
        **arguments,
        callbacks=[*callbacks, ReleaseFreedMemory()],
        logger=logger,
        enable_progress_bar=uses_bar(block["enable_progress_bar"]) if bar is None else bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(run_dir),
        profiler=profiler,
    )


def quiet_lightning() -> None:
    """Keep the console for what a user needs: no hardware banners, tips or known-harmless warnings."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        r".*isinstance\(treespec, LeafSpec\).*",
        r".*number of training batches .* is smaller than the logging interval.*",
        r".*does not have many workers.*",
        r".*Checkpoint directory .* exists and is not empty.*",
        # A method's frozen parts (IF-MMIN's pretrained encoders, a teacher) are in eval mode by design.
        r".*module\(s\) in eval mode at the start of training.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)
    # Early epochs often predict one class; the metric says so once per epoch. The value (F1 = 0, NaN corr) is
    # what the results record.
    warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
