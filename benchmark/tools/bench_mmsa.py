"""msabench's ``lf_dnn`` against MMSA's own LF_DNN loop: seconds per epoch and test metrics, seed by seed.

Run ``python -m msabench.tools.bench_mmsa --data-path FILE.pkl`` (a pickle from ``msabench data export
synthetic --out FILE.pkl``, or any MMSA MOSI-format file; without ``--data-path`` the default synthetic data
are exported to a temporary directory first). Both loops train on the same file with MMSA's MOSI
hyperparameters (``lf_dnn``'s ``mosi`` config block is MMSA's ``config_regression.json``), the same seeds, in
one process, alternating which loop goes first from seed to seed so that the machine's load falls on both
alike. Each selects on validation L1 with patience 8 and is tested on the complete test split.

Seconds per epoch are those of the training loop (training, validation and saving the best weights), without
reading the data or testing. MMSA is not a dependency: install it beside msabench for this benchmark only::

    pip install --no-deps mmsa==2.2.1 easydict && pip install scikit-learn

MMSA imports ``pynvml`` (for GPU selection only); where it is missing an empty module stands in for it in this
process, and ``torch.cuda.set_device``, which MMSA calls unconditionally, does nothing without a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

INSTALL = "pip install --no-deps mmsa==2.2.1 easydict && pip install scikit-learn"
# MMSA's test metric names -> msabench's.
METRICS: dict[str, str] = {
    "Has0_acc_2": "acc2_has0",
    "Has0_F1_score": "f1_has0",
    "Non0_acc_2": "acc2_non0",
    "Non0_F1_score": "f1_non0",
    "Mult_acc_5": "acc5",
    "Mult_acc_7": "acc7",
    "MAE": "mae",
    "Corr": "corr",
}


@dataclass
class LoopResult:
    """One loop's training on one seed."""

    loop: str
    seed: int
    epochs: int
    best_epoch: int
    seconds: float
    metrics: dict[str, float]

    @property
    def seconds_per_epoch(self) -> float:
        """Training-loop seconds per epoch."""
        return self.seconds / max(self.epochs, 1)


def mmsa_missing() -> str | None:
    """None when MMSA and what it imports can be loaded; else one line saying how to install it."""
    needed = ("MMSA", "easydict", "sklearn")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return f"MMSA is not installed ({', '.join(missing)} missing): {INSTALL}"
    return None


def _prepare_mmsa_process() -> None:
    """What MMSA needs to import and run on a machine without a GPU, in this process only."""
    # Checked in sys.modules first: the stand-in of an earlier seed has no spec, and find_spec refuses that.
    if "pynvml" not in sys.modules and importlib.util.find_spec("pynvml") is None:
        sys.modules["pynvml"] = types.ModuleType("pynvml")  # MMSA uses it to pick a GPU only
    if not torch.cuda.is_available():
        torch.cuda.set_device = lambda *args, **kwargs: None  # type: ignore[assignment]


def train_mmsa(data_path: Path, seed: int, workdir: Path) -> LoopResult:
    """MMSA 2.2.1's LF_DNN on MOSI's config, with its own data loader, train loop and early stopping."""
    _prepare_mmsa_process()
    from MMSA.config import get_config_regression
    from MMSA.data_loader import MMDataLoader
    from MMSA.models import AMIO
    from MMSA.trains import ATIO
    from MMSA.utils import setup_seed

    args = get_config_regression("lf_dnn", "mosi")
    args.update(
        featurePath=str(data_path),
        model_save_path=workdir / f"mmsa-lf_dnn-{seed}.pth",
        device=torch.device("cuda" if torch.cuda.is_available() else "cpu"),
        train_mode="regression",
        custom_feature=None,
        feature_T="",
        feature_A="",
        feature_V="",
        cur_seed=1,
    )
    logging.getLogger("MMSA").setLevel(logging.WARNING)
    _quiet_progress_bars(trainer_module="MMSA.trains.singleTask.LF_DNN")
    setup_seed(seed)  # what MMSA_run does before each seed's run
    loaders = MMDataLoader(args, 0)  # no worker processes, as msabench's default
    model = AMIO(args).to(args.device)
    trainer = ATIO().getTrain(args)
    epochs = _count_epochs(trainer)
    started = time.perf_counter()
    trainer.do_train(model, loaders)
    seconds = time.perf_counter() - started
    model.load_state_dict(torch.load(args.model_save_path, weights_only=True))
    results = trainer.do_test(model.to(args.device), loaders["test"], mode="TEST")
    metrics = {ours: float(results[theirs]) for theirs, ours in METRICS.items()}
    # MMSA stops when the last improvement is early_stop epochs old.
    return LoopResult("MMSA", seed, epochs[0], epochs[0] - int(args.early_stop), seconds, metrics)


def _quiet_progress_bars(trainer_module: str) -> None:
    """MMSA's loop draws a tqdm bar per epoch and split; a plain iteration keeps the console for the table."""
    module = importlib.import_module(trainer_module)
    module.tqdm = lambda iterable, *args, **kwargs: contextlib.nullcontext(iterable)  # type: ignore[attr-defined]


def _count_epochs(trainer: Any) -> list[int]:
    """Count MMSA's validation passes (one per epoch) by wrapping its trainer's ``do_test``."""
    count = [0]
    do_test = trainer.do_test

    def counted(model: Any, loader: Any, mode: str = "VAL", **kwargs: Any) -> Any:
        if mode == "VAL":
            count[0] += 1
        return do_test(model, loader, mode=mode, **kwargs)

    trainer.do_test = counted
    return count


def msabench_overrides() -> list[str]:
    """``lf_dnn`` as MMSA's code is: the text LSTM's state after the padding, where the config has the key."""
    from msabench import config as config_lib

    cfg = config_lib.compose("lf_dnn", "mosi", "mosi", {}, (), ())
    return ["model.text_readout=final_step"] if "text_readout" in cfg.model else []


def train_msabench(data_path: Path, seed: int, workdir: Path, overrides: Sequence[str] = ()) -> LoopResult:
    """The ``lf_dnn`` of msabench on the same file read as MOSI, complete data, selected on validation L1."""
    from lightning.pytorch.profilers import SimpleProfiler

    from msabench import runner
    from msabench.protocols import Setting

    profiler = SimpleProfiler()
    request = runner.RunRequest(
        method="lf_dnn",
        settings=[Setting("intra", rate=0.0)],
        dataset="mosi",
        data_path=str(data_path),
        train_policy="complete",
        seed=seed,
        overrides=[*msabench_overrides(), "logging.csv=false", *overrides],
        output=workdir / "runs",
        rerun=True,
        profiler=profiler,
    )
    frame = runner.execute(request)
    # Lightning's training epoch holds the epoch's validation and checkpoint, as MMSA's loop does.
    seconds = float(sum(profiler.recorded_durations.get("run_training_epoch", [])))
    metrics = {str(r.metric): float(r.value) for r in frame.itertuples()}
    epochs, best = int(frame["epochs"].iloc[0]), int(frame["ckpt_epoch"].iloc[0])
    return LoopResult("msabench", seed, epochs, best, seconds, metrics)


def export_default(workdir: Path) -> Path:
    """The default synthetic data as an MMSA pickle in ``workdir`` (what ``msabench data export`` writes)."""
    from msabench.cli import main as cli

    path = workdir / "synthetic.pkl"
    cli(["data", "export", "synthetic", "--out", str(path)])
    return path


def render(results: Sequence[LoopResult]) -> str:
    """A line per (seed, loop), then the median ratio of seconds per epoch."""
    metrics = ("acc2_has0", "acc2_non0", "f1_has0", "acc7", "mae", "corr")
    head = f"{'seed':>6} {'loop':<9}{'epochs':>7}{'best':>6}{'s/epoch':>9}" + "".join(
        f"{m:>11}" for m in metrics
    )
    lines = [head]
    for r in results:
        values = "".join(f"{r.metrics.get(m, float('nan')):>11.4f}" for m in metrics)
        lines.append(
            f"{r.seed:>6} {r.loop:<9}{r.epochs:>7}{r.best_epoch:>6}{r.seconds_per_epoch:>9.3f}{values}"
        )
    ratios = []
    for seed in dict.fromkeys(r.seed for r in results):
        pair = {r.loop: r for r in results if r.seed == seed}
        if len(pair) == 2:
            ratios.append(pair["msabench"].seconds_per_epoch / pair["MMSA"].seconds_per_epoch)
    if ratios:
        each = ", ".join(f"{x:.2f}" for x in ratios)
        lines.append(f"msabench / MMSA seconds per epoch: median {statistics.median(ratios):.2f} ({each})")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Train both loops on every seed and print the table; 2 when MMSA is missing."""
    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m msabench.tools.bench_mmsa", description=description)
    parser.add_argument("--data-path", type=Path, default=None, help="an MMSA MOSI-format pickle")
    parser.add_argument("--seeds", default="1111,1112,1113,1114")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for msabench's side")
    args = parser.parse_args(argv)
    missing = mmsa_missing()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    from msabench.runner import quiet_lightning

    quiet_lightning()
    results: list[LoopResult] = []
    with tempfile.TemporaryDirectory(prefix="msabench-bench-mmsa-") as tmp:
        workdir = Path(tmp)
        data_path = args.data_path or export_default(workdir)
        for index, seed in enumerate(seeds):
            loops = [train_mmsa, train_msabench] if index % 2 == 0 else [train_msabench, train_mmsa]
            for loop in loops:
                extra = {"overrides": args.overrides} if loop is train_msabench else {}
                result = loop(data_path, seed, workdir, **extra)  # type: ignore[operator]
                results.append(result)
                done = (
                    f"{result.epochs} epochs (best {result.best_epoch}), {result.seconds_per_epoch:.3f} "
                    f"s/epoch, test acc2_has0 {result.metrics['acc2_has0']:.4f}"
                )
                print(f"  seed {seed} {result.loop}: {done}", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch threads {torch.get_num_threads()}, load average {load:.2f}")
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
