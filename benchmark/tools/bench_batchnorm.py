"""What running statistics do to a finished run's test predictions: its checkpoint tested both ways.

Usage::

    python -m msabench.tools.bench_batchnorm RUN_DIR [RUN_DIR ...] [--settings condition:t,intra@0.3]

Every evaluation in the suite normalises with the statistics a layer kept over training (BatchNorm, and the
masked feature normalisation some methods put on their inputs), so that a sample's prediction depends on
that sample alone. A network that passes differently distributed inputs through one such layer in training
(both views of a self-distilling or teacher-student method, say) keeps statistics of the mixture, and a test
view far from it comes out shifted: an offset on every prediction, which can put them all on one side of 0.

This reopens each run from its directory (same config, data and run key; the checkpoint it selected) and tests
it on its test split twice, as the suite does: once with the running statistics and once with each test
batch's own (batches of the run's ``data.eval_batch_size``), every other layer in evaluation mode. The first
pass must reproduce the run's recorded Acc-2; the second is a diagnostic, never a result (a prediction then
depends on the other samples of its batch). For each setting it prints the mean and standard deviation of the
predictions, the share at or above zero, Acc-2 Has0 (Acc-2 on SIMS), MAE and Corr, and the labels' mean and
standard deviation. Regression runs only (MOSI, MOSEI, SIMS and the synthetic data).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from msabench.errors import ConfigError, MSABenchError
from msabench.models.base import MSAMethod
from msabench.runner import PreparedRun, build_final_module, load_checkpoint, quiet_lightning, reopen
from msabench.runner.trainer import build_trainer
from msabench.store import read_run

STATISTICS = ("running", "batch")


@dataclass
class Pass:
    """One test pass over a setting: the predictions and labels in test order, and the suite's metrics."""

    predictions: np.ndarray
    labels: np.ndarray
    metrics: dict[str, float]


def running_statistics_layers(module: nn.Module) -> list[nn.Module]:
    """The layers that normalise evaluation batches with statistics kept in training (a ``running_mean``)."""
    return [m for m in module.modules() if isinstance(getattr(m, "running_mean", None), torch.Tensor)]


class _Recorder(L.Callback):
    """Collects each test dataloader's predictions and labels, and keeps the chosen layers in batch mode."""

    def __init__(self, n_settings: int, statistics: str) -> None:
        self.statistics = statistics
        self.outputs: list[list[torch.Tensor]] = [[] for _ in range(n_settings)]
        self.labels: list[list[torch.Tensor]] = [[] for _ in range(n_settings)]
        self._current = 0
        self._hook: Any = None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The test loop has just put the whole module in evaluation mode.
        if self.statistics == "batch":
            for layer in running_statistics_layers(pl_module):
                layer.train()
        self._hook = pl_module.register_forward_hook(self._record)

    def on_test_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._current = dataloader_idx

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._hook.remove()

    def _record(self, module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        self.outputs[self._current].append(output.detach().float().reshape(-1).cpu())
        self.labels[self._current].append(inputs[0]["label"].detach().float().reshape(-1).cpu())


def predict_with(prepared: PreparedRun, statistics: str) -> dict[str, Pass]:
    """The run's checkpoint tested on its request's settings with ``running`` or ``batch`` statistics.

    Each pass loads its own copy: in a ``batch`` pass the layers also update their running statistics.
    """
    module: MSAMethod = load_checkpoint(prepared)
    settings = list(prepared.request.settings)
    dm = prepared.datamodule
    dm.test = settings
    module.set_test_settings(settings)
    recorder = _Recorder(len(settings), statistics)
    with tempfile.TemporaryDirectory(prefix="msabench-batchnorm-") as tmp:
        trainer = build_trainer(prepared.cfg, Path(tmp), callbacks=[recorder], logger=False)
        trainer.test(module, datamodule=dm, verbose=False)
    return {
        s.name: Pass(
            torch.cat(recorder.outputs[i]).numpy(),
            torch.cat(recorder.labels[i]).numpy(),
            module.test_results[s.name],
        )
        for i, s in enumerate(settings)
    }


def report(run_dir: Path, settings: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per setting and statistics of the finished run in ``run_dir`` (all its settings by default).

    Raises:
        OutputError: not a finished run this msabench can rebuild.
        ConfigError: a classification run, or a setting the run was not tested on.
    """
    prepared = reopen(run_dir)
    family = prepared.datamodule.dims.metric_family
    if family not in ("mosi", "sims"):
        raise ConfigError(
            f"{run_dir} is a classification run ({family}): bench_batchnorm reads regression runs"
        )
    recorded = {s.name: s for s in prepared.request.settings}
    if settings:
        unknown = [name for name in settings if name not in recorded]
        if unknown:
            known = ", ".join(recorded)
            raise ConfigError(
                f"{run_dir.name} was not tested on {', '.join(unknown)}: its settings are {known}"
            )
        prepared.request.settings = [recorded[name] for name in settings]
    accuracy = "acc2_has0" if family == "mosi" else "acc2"
    rows: list[dict[str, Any]] = []
    n_layers = len(running_statistics_layers(build_final_module(prepared)))
    for statistics in STATISTICS if n_layers else STATISTICS[:1]:
        for name, result in predict_with(prepared, statistics).items():
            p, y = result.predictions, result.labels
            rows.append(
                {
                    "setting": name,
                    "statistics": statistics,
                    "pred_mean": float(p.mean()),
                    "pred_std": float(p.std()),
                    "at_or_above_0": float((p >= 0).mean()),
                    accuracy: result.metrics[accuracy],
                    "mae": result.metrics["mae"],
                    "corr": result.metrics["corr"],
                    "label_mean": float(y.mean()),
                    "label_std": float(y.std()),
                    "layers": n_layers,
                }
            )
    order = {name: i for i, name in enumerate(s.name for s in prepared.request.settings)}
    return sorted(rows, key=lambda r: (order[r["setting"]], STATISTICS.index(r["statistics"])))


def _print(run_dir: Path, rows: list[dict[str, Any]], recorded: dict[str, float]) -> None:
    accuracy = "acc2_has0" if "acc2_has0" in rows[0] else "acc2"
    print(f"{run_dir.name}: {rows[0]['layers']} layer(s) with running statistics")
    if not rows[0]["layers"]:
        print("  its predictions do not depend on running statistics; one pass:")
    columns = ("mean", "std", ">=0 %", accuracy, "mae", "corr")
    print(f"  {'setting':<14} {'statistics':<10} " + " ".join(f"{c:>{max(len(c), 6)}}" for c in columns))
    for r in rows:
        print(
            f"  {r['setting']:<14} {r['statistics']:<10} {r['pred_mean']:>+6.3f} {r['pred_std']:>6.3f} "
            f"{100 * r['at_or_above_0']:>6.1f} {100 * r[accuracy]:>{len(accuracy)}.2f} {r['mae']:>6.3f} "
            f"{r['corr']:>6.3f}"
        )
    labels = rows[0]
    print(f"  labels: mean {labels['label_mean']:+.3f}, std {labels['label_std']:.3f}")
    mismatch = [
        r["setting"]
        for r in rows
        if r["statistics"] == "running" and r[accuracy] != recorded.get(r["setting"])
    ]
    if mismatch:
        print(f"  WARNING: the running pass differs from the recorded {accuracy} on {', '.join(mismatch)}")
    else:
        print(f"  the running pass reproduces the recorded {accuracy} exactly")


def recorded_accuracy(run_dir: Path) -> dict[str, float]:
    """The run's recorded Acc-2 (Has0, or SIMS's Acc-2) per setting, from its ``results.csv``."""
    rows = read_run(run_dir)
    rows = rows[rows["metric"].isin(["acc2_has0", "acc2"])]
    return {str(s): float(v) for s, v in zip(rows["setting"], rows["value"], strict=True)}


def main(argv: Sequence[str] | None = None) -> int:
    """Test each run's checkpoint with running and with batch statistics; print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m msabench.tools.bench_batchnorm", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="finished run directories")
    parser.add_argument(
        "--settings", default=None, help="comma-separated setting names (default: all of a run's)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    quiet_lightning()
    wanted = [s.strip() for s in args.settings.split(",")] if args.settings else None
    try:
        for run_dir in args.run_dirs:
            _print(run_dir, report(run_dir, wanted), recorded_accuracy(run_dir))
    except MSABenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
