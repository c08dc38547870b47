"""The Lightning Trainer, built from the typed ``trainer`` block, and a quiet console."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig

from msabench.config_schema import plain_dict
from msabench.metrics import UndefinedMetricWarning

# Keys of the `trainer` block that are not Trainer arguments: early stopping's patience (a callback of the
# stages), and the progress bar, whose null means "on for a terminal".
_NOT_PASSED = ("patience", "enable_progress_bar")


def build_trainer(
    cfg: DictConfig, run_dir: Path, callbacks: list[Any], logger: Any, profiler: Any = None
) -> L.Trainer:
    """A Trainer from ``cfg.trainer``, every key passed as it is; a null leaves Lightning's default.

    Fixed for every run: no sanity validation steps, no model summary.
    """
    block = plain_dict(cfg.trainer)
    progress = block["enable_progress_bar"]
    arguments = {k: v for k, v in block.items() if k not in _NOT_PASSED and v is not None}
    return L.Trainer(
        **arguments,
        callbacks=callbacks,
        logger=logger,
        enable_progress_bar=sys.stderr.isatty() if progress is None else progress,
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
    ):
        warnings.filterwarnings("ignore", message=pattern)
    # Early epochs often predict one class; the metric says so once per epoch. The value (F1 = 0, NaN corr) is
    # what the results record.
    warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
