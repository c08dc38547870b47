"""Where a run's time goes: data, protocol and text view, forward/backward, validation, logging, checkpoints.

Run ``python -m msabench.tools.bench_profile`` to profile the README's main job (``msabench run --method derl
--protocol intra --rate 0.3``); ``--max-epochs`` and ``--limit-batches`` keep a profile short, and any
``key=value`` overrides pass through as they do for ``msabench run``. The run is the real one (same config,
seed and selection), trained into a temporary directory; Lightning's simple profiler times each hook, and the
phases are summed from them:

- ``setup``: reading the data, choosing the text view, checking the config (before the first epoch);
- ``data``: fetching batches from the loaders and moving them to the device;
- ``protocol``: the missingness protocol or training policy on the device, and text re-encoding (training
  batches each step; fixed validation/test views once per run);
- ``forward+loss``, ``backward``, ``optimizer``: the method's own computation in training;
- ``validation``: the validation steps and the epoch's metrics;
- ``checkpoint``: writing the selected weights;
- ``test``: evaluating the selected checkpoint on the requested setting;
- ``other``: the rest of the wall time (Lightning's loop, logging, callbacks, loading the best weights).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.profilers import SimpleProfiler

# (phase, substrings of Lightning's profiler action names); the first match wins. ``optimizer_step`` wraps
# the closure that runs training_step and backward, so those two are subtracted from it below.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("data", ("dataloader_next", "val_next", "test_next", "Strategy.batch_to_device")),
    ("protocol", ("on_after_batch_transfer",)),
    ("forward+loss", ("Strategy.training_step",)),
    ("backward", ("Strategy.backward",)),
    ("optimizer", ("optimizer_step",)),
    ("validation", ("Strategy.validation_step", "on_validation_epoch_end")),
    ("test", ("Strategy.test_step", "on_test_epoch_end")),
    ("checkpoint", ("save_checkpoint",)),
)
ORDER: tuple[str, ...] = (
    "setup",
    "data",
    "protocol",
    "forward+loss",
    "backward",
    "optimizer",
    "validation",
    "checkpoint",
    "test",
    "other",
)


def phase_of(action: str) -> str | None:
    """The phase a profiler action belongs to, or None when it is part of another one (or of ``other``)."""
    for phase, keys in PHASES:
        if any(k in action for k in keys):
            return phase
    return None


def phases(durations: Mapping[str, Sequence[float]], setup_s: float, total_s: float) -> dict[str, float]:
    """Seconds per phase from the profiler's recorded durations; ``other`` is the wall time left over.

    Args:
        durations: Lightning's ``SimpleProfiler.recorded_durations`` (action -> seconds of each call).
        setup_s: seconds before training started.
        total_s: wall seconds of the whole run, setup included.
    """
    out = dict.fromkeys(ORDER, 0.0)
    out["setup"] = setup_s
    for action, calls in durations.items():
        phase = phase_of(action)
        if phase is not None:
            out[phase] += float(sum(calls))
    # The optimizer step's closure ran the training step and the backward pass, and the strategy's
    # batch_to_device ran the datamodule's on_after_batch_transfer: count each once.
    out["data"] = max(0.0, out["data"] - out["protocol"])
    out["optimizer"] = max(0.0, out["optimizer"] - out["forward+loss"] - out["backward"])
    out["other"] = max(0.0, total_s - sum(out[k] for k in ORDER if k != "other"))
    return out


def profile_run(
    method: str,
    protocol: str,
    rate: float | None,
    condition: str | None,
    overrides: Sequence[str],
    output: Path,
    extra_blocks: Sequence[str] = (),
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Train and test one run with the profiler on.

    Returns:
        (seconds per phase, the test metrics of the setting, run facts: epochs and total seconds).
    """
    from msabench import runner

    profiler = SimpleProfiler()
    request = runner.RunRequest(
        method=method,
        settings=[runner.make_setting(protocol, rate, condition)],
        overrides=list(overrides),
        output=output,
        extra_blocks=extra_blocks,
        profiler=profiler,
    )
    runner.quiet_lightning()
    started = time.perf_counter()
    prepared = runner.prepare(request)
    setup_s = time.perf_counter() - started
    split = _time_protocol_by_split(prepared.datamodule)
    frame = runner.execute_prepared(prepared)
    total_s = time.perf_counter() - started
    metrics = {str(r.metric): float(r.value) for r in frame.itertuples() if r.metric}
    steps = float(len(profiler.recorded_durations.get("run_training_batch", [])))
    facts = {"epochs": float(frame["epochs"].iloc[0]), "steps": steps, "total_s": total_s, **split}
    return phases(profiler.recorded_durations, setup_s, total_s), metrics, facts


def _time_protocol_by_split(datamodule: Any) -> dict[str, float]:
    """Split the protocol phase into training batches and evaluation batches (their fixed views included).

    Returns:
        A dict the wrapped hook fills while the run trains: ``protocol_train_s``, ``protocol_eval_s``.
    """
    seconds = {"protocol_train_s": 0.0, "protocol_eval_s": 0.0}
    hook = datamodule.on_after_batch_transfer

    def timed(batch: Any, dataloader_idx: int) -> Any:
        start = time.perf_counter()
        out = hook(batch, dataloader_idx)
        trainer = datamodule.trainer
        key = "protocol_train_s" if trainer is not None and trainer.training else "protocol_eval_s"
        seconds[key] += time.perf_counter() - start
        return out

    datamodule.on_after_batch_transfer = timed
    return seconds


def render(seconds: Mapping[str, float]) -> str:
    """A table of seconds and fractions of the total per phase."""
    total = sum(seconds.values())
    lines = [f"{'phase':<14}{'seconds':>10}{'share':>9}"]
    lines += [f"{k:<14}{seconds[k]:>10.2f}{100 * seconds[k] / total:>8.1f}%" for k in ORDER]
    lines.append(f"{'total':<14}{total:>10.2f}{100.0:>8.1f}%")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Profile one run and print its phases (seconds and share of the wall time)."""
    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m msabench.tools.bench_profile", description=description)
    parser.add_argument("--method", default="derl")
    parser.add_argument("--protocol", default="intra")
    parser.add_argument("--rate", type=float, default=None, help="default 0.3 (with --protocol intra)")
    parser.add_argument("--condition", default=None)
    parser.add_argument("--max-epochs", type=int, default=None, help="cap the epochs (default: the config's)")
    parser.add_argument("--limit-batches", type=float, default=None, help="training batches per epoch")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, as for msabench run")
    args = parser.parse_args(argv)
    rate = args.rate if args.rate is not None or args.condition else 0.3
    overrides = list(args.overrides)
    if args.max_epochs is not None:
        overrides.append(f"trainer.max_epochs={args.max_epochs}")
    if args.limit_batches is not None:
        limit = int(args.limit_batches) if args.limit_batches >= 1 else args.limit_batches
        overrides.append(f"trainer.limit_train_batches={limit}")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="msabench-profile-") as tmp:
        seconds, metrics, facts = profile_run(
            args.method, args.protocol, rate, args.condition, overrides, Path(tmp) / "runs"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = f"condition {args.condition}" if args.condition else f"rate {rate}"
    print(
        f"{args.method} | {args.protocol} {where} | {int(facts['epochs'])} epochs | "
        f"{facts['total_s']:.1f} s | load average {load:.2f}"
    )
    print(render(seconds))
    print(
        f"protocol: {facts['protocol_train_s']:.2f} s on training batches (policy and text re-encoding each "
        f"step), {facts['protocol_eval_s']:.2f} s on validation/test batches (fixed views made once)"
    )
    steps, epochs = max(facts["steps"], 1.0), max(facts["epochs"], 1.0)
    own = seconds["forward+loss"] + seconds["backward"] + seconds["optimizer"]
    per_step = (own + facts["protocol_train_s"]) / steps
    print(
        f"per training step ({int(steps)} steps): {per_step:.3f} s of forward, backward, optimizer and the "
        f"training protocol; per epoch: {seconds['validation'] / epochs:.2f} s of validation steps"
    )
    print("test: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
