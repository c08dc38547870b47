"""A short check for a GPU machine: every method, every protocol and training policy, a few steps each.

Run ``python -m msabench.tools.gpu_check`` on a machine with CUDA. For each method it trains a few steps and
tests once under the protocols (intra, inter, condition) and the training policies (complete, matched, lnln,
conditions, stochastic), through the real runner, with masks and text re-encoding on the device, and:

- checks that the method's training step and the training batch's protocol (masks, re-encoding) never make
  the host wait for the device: ``torch.cuda.set_sync_debug_mode("warn")`` is on around each of them, and
  every synchronising call fails the case, reported with its place in the code and count;
- reports training steps per second (after a warm-up step) and peak GPU memory per method, and how many runs
  of each method fit on one GPU at once (its peak reserved memory plus one CUDA context per process).

Without CUDA it runs the same cases on the CPU (``--smoke`` for tiny data and widths, as the tests do); the
no-synchronisation check is then a proxy: the calls that synchronise on a GPU (``Tensor.item``, ``tolist``,
``numpy``, ``nonzero``, ``bool()``, ``int()``, ``float()``) are counted inside the same regions, on the code
a GPU runs (layers that gather only where it is free take their accelerator path, ``accelerator_paths``).
Boolean-mask indexing also synchronises on a GPU and is caught there only. Exit status 1 when a case failed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.profilers import Profiler

from msabench.models.components.layers import accelerator_paths
from msabench.protocols import Setting

SMOKE_OVERRIDES: tuple[str, ...] = (
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "data.options.n_scale=0.05",
)
# (training policy, test setting): every protocol under the policy that trains on it, and every policy.
CASES: tuple[tuple[str, Setting], ...] = (
    ("matched", Setting("intra", rate=0.3)),
    ("matched", Setting("inter", rate=0.3)),
    ("matched", Setting("condition", condition="ta")),
    ("complete", Setting("intra", rate=0.3)),
    ("lnln", Setting("intra", rate=0.3)),
    ("conditions", Setting("condition", condition="ta")),
    ("stochastic", Setting("inter", rate=0.3)),
)
# The Lightning actions that must not synchronise: the method's training step (forward, loss, logging) and
# the training batch's protocol and re-encoding (the datamodule's hook; evaluation batches may make their
# fixed views once).
GUARDED_STEP = "training_step"
GUARDED_PROTOCOL = "on_after_batch_transfer"
PROXY_CALLS: tuple[str, ...] = ("item", "tolist", "numpy", "nonzero", "__bool__", "__int__", "__float__")


def call_site(skip: tuple[str, ...] = ("/torch/", "contextlib.py")) -> str:
    """``file:line`` of the innermost frame of the calling stack outside torch and this module."""
    for frame in reversed(traceback.extract_stack()):
        if frame.filename != __file__ and not any(k in frame.filename for k in skip):
            return f"{Path(frame.filename).name}:{frame.lineno}"
    return "unknown"


@contextmanager
def cpu_sync_proxy(sites: Counter[str]) -> Iterator[None]:
    """Count the tensor calls that synchronise on a GPU (by call site) inside this block; they still run."""
    saved = {name: getattr(torch.Tensor, name) for name in PROXY_CALLS}

    def counted(name: str) -> Callable[..., Any]:
        original = saved[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            sites[f"Tensor.{name} at {call_site()}"] += 1
            return original(*args, **kwargs)

        return call

    try:
        for name in PROXY_CALLS:
            setattr(torch.Tensor, name, counted(name))
        yield
    finally:
        for name, call in saved.items():
            setattr(torch.Tensor, name, call)


class SyncGuard(Profiler):
    """A Lightning profiler that records host synchronisations in the guarded actions and times each step.

    On CUDA the guarded actions run under ``torch.cuda.set_sync_debug_mode("warn")`` and each warning is
    counted by its place in the code; on the CPU the proxy counts the calls that would synchronise.

    Args:
        cuda: use the CUDA sync debug mode (else the CPU proxy).
    """

    def __init__(self, cuda: bool) -> None:
        super().__init__()
        self.cuda = cuda
        self.sites: Counter[str] = Counter()
        self.step_seconds: list[float] = []
        self._training_batch = False
        self._step_start: float | None = None
        self._inside: Any = None

    def _guarded(self, action: str) -> bool:
        if action.endswith(f".{GUARDED_STEP}"):
            return True
        return action.endswith(f".{GUARDED_PROTOCOL}") and self._training_batch

    def start(self, action_name: str) -> None:
        """Enter an action: note training batches, start the step clock, switch the guard on."""
        if action_name.endswith("_next"):
            self._training_batch = action_name.endswith("train_dataloader_next")
            if self._training_batch:
                self._sync()
                self._step_start = time.perf_counter()
        if self._guarded(action_name):
            self._inside = self._cuda_guard() if self.cuda else cpu_sync_proxy(self.sites)
            self._inside.__enter__()

    def stop(self, action_name: str) -> None:
        """Leave an action: switch the guard off, stop the step clock after the optimizer step."""
        if self._guarded(action_name) and self._inside is not None:
            self._inside.__exit__(None, None, None)
            self._inside = None
        if action_name == "run_training_batch" and self._step_start is not None:
            self._sync()
            self.step_seconds.append(time.perf_counter() - self._step_start)
            self._step_start = None

    @contextmanager
    def _cuda_guard(self) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode("default")
        for w in caught:
            if "synchroniz" in str(w.message):
                what = str(w.message).splitlines()[0][:60]
                self.sites[f"{what} at {Path(w.filename).name}:{w.lineno}"] += 1
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def summary(self) -> str:
        """Nothing to print: :func:`main` reports."""
        return ""


@dataclass
class CaseResult:
    """One (method, policy, setting) case."""

    method: str
    policy: str
    setting: str
    ok: bool
    steps_per_s: float = math.nan
    peak_allocated_mib: float = math.nan
    peak_reserved_mib: float = math.nan
    error: str = ""
    syncs: dict[str, int] = field(default_factory=dict)
    step_seconds: list[float] = field(default_factory=list)


def where_it_failed(err: BaseException) -> str:
    """The error and the innermost frame of msabench code it came from."""
    ours = ("msabench", "/models/", "/datamodules/", "/protocols/", "/benchmark/")
    frames = [f for f in traceback.extract_tb(err.__traceback__) if any(k in f.filename for k in ours)]
    frames = [f for f in frames if not f.filename.endswith("gpu_check.py")]
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{type(err).__name__}: {text}{place}"


def run_case(
    method: str,
    policy: str,
    setting: Setting,
    steps: int,
    overrides: Sequence[str],
    smoke: bool,
    output: Path,
) -> CaseResult:
    """Train ``steps`` steps of one case and test once, with the guard on; never raises for a failed case."""
    from msabench import runner

    cuda = torch.cuda.is_available()
    guard = SyncGuard(cuda)
    limits = [
        "trainer.max_epochs=1",
        "trainer.min_epochs=1",
        "trainer.patience=null",
        f"trainer.limit_train_batches={steps}",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "logging.csv=false",
    ]
    request = runner.RunRequest(
        method=method,
        settings=[setting],
        train_policy=policy,
        overrides=[*(SMOKE_OVERRIDES if smoke else ()), *overrides, *limits],
        output=output,
        extra_blocks=("smoke",) if smoke else (),
        profiler=guard,
    )
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    result = CaseResult(method, policy, setting.name, ok=True)
    try:
        with contextlib.nullcontext() if cuda else accelerator_paths():
            runner.execute(request)
    except Exception as err:  # every failure is reported, the check goes on with the next case
        result.ok, result.error = False, where_it_failed(err)
    finally:
        if cuda:
            torch.cuda.set_sync_debug_mode("default")
    result.syncs = dict(guard.sites)
    result.ok = result.ok and not result.syncs
    timed = guard.step_seconds[1:]  # the first step warms up kernels and allocators
    result.step_seconds = guard.step_seconds
    if timed:
        result.steps_per_s = 1.0 / statistics.median(timed)
    if cuda:
        result.peak_allocated_mib = torch.cuda.max_memory_allocated() / 2**20
        result.peak_reserved_mib = torch.cuda.max_memory_reserved() / 2**20
    return result


def describe(result: CaseResult) -> str:
    """``ok``, the error, or each place that synchronised with its count."""
    if result.error:
        return result.error
    if result.syncs:
        return "host sync: " + "; ".join(f"{site} x{n}" for site, n in result.syncs.items())
    return "ok"


def context_mib() -> float:
    """Device memory a process holds beyond PyTorch's allocator (the CUDA context), in MiB."""
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    return max(0.0, (total - free - torch.cuda.memory_reserved()) / 2**20)


def render(results: Sequence[CaseResult], cuda: bool) -> str:
    """A line per case, then a line per method: steps/s, peak memory and runs per GPU."""
    lines = [f"{'method':<11}{'policy':<12}{'setting':<16}{'steps/s':>9}  result"]
    for r in results:
        outcome = describe(r)
        lines.append(f"{r.method:<11}{r.policy:<12}{r.setting:<16}{r.steps_per_s:>9.2f}  {outcome}")
    lines.append("")
    context = context_mib() if cuda else math.nan
    total = torch.cuda.get_device_properties(0).total_memory / 2**20 if cuda else math.nan
    columns = ("steps/s (median)", "peak alloc MiB", "peak reserved MiB", "runs/GPU")
    lines.append(f"{'method':<11}" + "".join(f"{c:>19}" for c in columns))
    for method in dict.fromkeys(r.method for r in results):
        mine = [r for r in results if r.method == method]
        rates = [r.steps_per_s for r in mine if not math.isnan(r.steps_per_s)]
        alloc = max((r.peak_allocated_mib for r in mine), default=math.nan)
        reserved = max((r.peak_reserved_mib for r in mine), default=math.nan)
        fits = math.floor(total / (reserved + context)) if cuda and reserved > 0 else math.nan
        rate = statistics.median(rates) if rates else math.nan
        lines.append(f"{method:<11}{rate:>19.2f}{alloc:>19.0f}{reserved:>19.0f}{fits:>19}")
    if cuda:
        name = torch.cuda.get_device_name(0)
        lines.append(f"device: {name}, {total:.0f} MiB; CUDA context per process ≈ {context:.0f} MiB")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every case and print the tables; returns 1 when a case failed."""
    from msabench.models import canonical_name, names
    from msabench.runner import quiet_lightning

    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m msabench.tools.gpu_check", description=description)
    parser.add_argument("--methods", default=None, help="comma-separated (default: every registered method)")
    parser.add_argument("--steps", type=int, default=6, help="training steps per case (the first is warm-up)")
    parser.add_argument("--smoke", action="store_true", help="tiny data and widths (the CPU test)")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides for every case")
    args = parser.parse_args(argv)
    methods = [canonical_name(m) for m in args.methods.split(",")] if args.methods else names()
    cuda = torch.cuda.is_available()
    quiet_lightning()
    device = "cuda" if cuda else "cpu (no-synchronisation check by proxy)"
    print(f"device: {device}; {args.steps} steps per case")
    results = []
    with tempfile.TemporaryDirectory(prefix="msabench-gpu-check-") as tmp:
        for method in methods:
            for policy, setting in CASES:
                result = run_case(method, policy, setting, args.steps, args.overrides, args.smoke, Path(tmp))
                results.append(result)
                print(f"  {method} {policy} {setting.name}: {describe(result)}", flush=True)
    print(render(results, cuda))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
