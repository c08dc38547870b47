"""Executors: where a sweep's jobs run: ``local`` (processes here), ``ray`` and ``slurm`` (their engines).

The sweep's driver hands jobs to a :class:`Backend` and collects one :class:`~concurrent.futures.Future` per
job. Every backend ships the same function (:func:`msabench.sweep.worker.run_job`) and the run it trains is
keyed by what determines it, never by where it ran or with what resources, so any executor reuses the
finished runs of any other. Retrying a job whose process died is the engine's where it has one (Ray); the
driver retries only what the engine does not (a broken local pool, a SLURM job that ended without a result).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from msabench.errors import ConfigError

THREAD_VARS: Final[tuple[str, ...]] = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# How long a stopped sweep waits for its workers to leave their runs' resume points before it kills them.
STOP_GRACE_S: Final[float] = 60.0
Verdict = Literal["broken", "lost", "failed"]
"""What a job's exception means: ``broken`` (the pool died: requeue every job in it and restart it), ``lost``
(this job's process ended without a result and the engine did not retry it: requeue it), ``failed``."""


@dataclass(frozen=True)
class Resources:
    """What each run gets, and where the engine is. None of it enters a run's key.

    Attributes:
        cpus_per_run: CPU cores per run (its torch threads); None: ``local`` shares the cores among the
            workers, the engines give 1.
        gpus_per_run: GPUs per run, a fraction packs several runs on one GPU; None: 1 where the cluster has
            GPUs, else 0. 0 hides every GPU from the run.
        memory_gb: memory per run (Ray schedules by it, SLURM asks for it); None: the engine's default.
        address: the Ray cluster (``auto``, ``ray://host:10001``); None: ``RAY_ADDRESS`` or a local instance.
        partition: the SLURM partition; None: the cluster's default.
        time_limit_min: the SLURM time limit of one run.
        max_retries: how often an engine retries a run whose process or node died.
    """

    cpus_per_run: float | None = None
    gpus_per_run: float | None = None
    memory_gb: float | None = None
    address: str | None = None
    partition: str | None = None
    time_limit_min: int = 240
    max_retries: int = 2

    def check(self) -> None:
        """One line for an impossible request."""
        if self.cpus_per_run is not None and self.cpus_per_run <= 0:
            raise ConfigError(f"--cpus-per-run must be positive, not {self.cpus_per_run:g}")
        if self.gpus_per_run is not None and not (
            0 <= self.gpus_per_run <= 1 or float(self.gpus_per_run).is_integer()
        ):
            raise ConfigError(
                f"--gpus-per-run {self.gpus_per_run:g}: use a fraction of one GPU (0.25 packs four runs on a "
                "GPU) or a whole number"
            )
        if self.memory_gb is not None and self.memory_gb <= 0:
            raise ConfigError(f"--memory-gb must be positive, not {self.memory_gb:g}")
        if self.time_limit_min <= 0 or self.max_retries < 0:
            raise ConfigError("--time-limit must be positive and --max-retries 0 or more")


@dataclass(frozen=True)
class BackendRequest:
    """What a sweep asks of an executor (each backend takes what it needs).

    Attributes:
        workers: local processes at once (0: every job in this process).
        resources: per-run cores, GPUs and memory.
        output: the results root.
        state: the sweep's state folder (the SLURM logs go below it).
        factory: ``(workers, threads) -> Executor`` instead of the process pool (tests).
    """

    workers: int
    resources: Resources
    output: Path
    state: Path
    factory: Callable[[int, int], Executor] | None = None


class Backend:
    """The driver's view of an executor: slots, submission, what an error means, stopping."""

    name: str = "local"
    slots: int = 1
    """Runs the driver keeps in flight."""
    threads: int = 1
    """Torch threads per run."""
    notes: Sequence[str] = ()
    """What the user should know about how the request was met (one line each)."""

    @classmethod
    def from_request(cls, request: BackendRequest) -> Backend:
        """The backend for a sweep's request (what ``--executor NAME`` builds, through the registry)."""
        raise NotImplementedError

    def start(self) -> None:
        """Connect to the engine and check that every node can use the results root."""

    def submit_many(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Future]:
        """Submit ``fn(*args)`` for each args tuple; one future each (SLURM: one array job)."""
        raise NotImplementedError

    def verdict(self, err: BaseException) -> tuple[Verdict, str]:
        """What a job's exception means, and a one-line message.

        A job whose process was told to stop (a signal to that worker alone: an operator, a preemption)
        did not fail: its run kept its last epoch, and the retry resumes from there.
        """
        if not isinstance(err, Exception):
            return (
                "lost",
                f"its worker was stopped ({err or type(err).__name__}); it resumes from its last epoch",
            )
        return "failed", f"{type(err).__name__}: {err}".strip()

    def restart(self) -> None:
        """Start afresh after a ``broken`` verdict."""

    def stop(self) -> None:
        """Stop every run in flight now (the user stopped the sweep); their runs are redone next time."""

    def close(self) -> None:
        """Release the engine after a sweep that ended normally."""


# ---------------------------------------------------------------------------------------------------- local
def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _init_worker(threads: int, devices: Any = None) -> None:
    """Worker start: its device and share of the cores, no SIGINT (the parent stops it), dies with it.

    ``devices`` is a queue of CUDA device ids, one taken per worker process; the variable is set before this
    process first touches CUDA, which is when torch reads it.
    """
    if devices is not None:
        with contextlib.suppress(Exception):
            os.environ["CUDA_VISIBLE_DEVICES"] = str(devices.get(timeout=10))
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):  # a worker orphaned by kill -9 of the sweep must not go on writing
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def worker_devices(workers: int, gpus: int, gpus_per_run: float | None) -> list[str] | None:
    """The ``CUDA_VISIBLE_DEVICES`` of each local worker: round robin over the GPUs; None without GPUs.

    ``gpus_per_run`` 0 hides the GPUs from every worker (an empty string); otherwise worker i gets GPU
    ``i % gpus``, so with more workers than GPUs several runs share one (``--gpus-per-run 0.5`` and twice as
    many workers as GPUs is two per GPU).
    """
    if gpus <= 0:
        return None
    if gpus_per_run == 0:
        return [""] * workers
    return [str(i % gpus) for i in range(workers)]


def process_pool(workers: int, threads: int, devices: Sequence[str] | None = None) -> Executor:
    """The default executor: ``workers`` spawned processes, ``threads`` torch threads and a device each."""
    context = multiprocessing.get_context("spawn")
    queue = None
    if devices is not None:
        queue = context.Queue()
        for device in devices:
            queue.put(device)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads, queue)
    )


class InlineExecutor(Executor):
    """Runs each job at submission in this process (``--workers 0``: debugging, tests)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # noqa: D102
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(err)
        # A signal or Ctrl-C stops this process, the sweep's driver: it propagates, the sweep stops.
        return future


class LocalBackend(Backend):
    """Processes on this machine: ``workers`` at once, each with ``cores // workers`` threads and one device.

    Args:
        workers: processes at once; 0 runs every job in this process.
        resources: ``cpus_per_run`` replaces the core share, ``gpus_per_run`` 0 hides the GPUs.
        factory: ``(workers, threads) -> Executor`` instead of the process pool (tests).
    """

    name = "local"

    @classmethod
    def from_request(cls, request: BackendRequest) -> LocalBackend:  # noqa: D102
        return cls(request.workers, request.resources, request.factory)

    def __init__(
        self,
        workers: int,
        resources: Resources | None = None,
        factory: Callable[[int, int], Executor] | None = None,
    ) -> None:
        resources = resources or Resources()
        self.workers = workers
        self.slots = max(workers, 1)
        cpus = resources.cpus_per_run
        self.threads = max(1, int(cpus) if cpus else available_cores() // self.slots)
        if factory is None and workers == 0:
            factory = lambda w, t: InlineExecutor()  # noqa: E731
        if factory is None:
            devices = worker_devices(workers, _gpu_count(), resources.gpus_per_run)
            factory = lambda w, t: process_pool(w, t, devices)  # noqa: E731
        self._factory = factory
        self._executor: Executor | None = None

    def start(self) -> None:  # noqa: D102
        self._executor = self._factory(self.workers, self.threads)

    def submit_many(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Future]:  # noqa: D102
        assert self._executor is not None
        return [self._executor.submit(fn, *args) for args in calls]

    def verdict(self, err: BaseException) -> tuple[Verdict, str]:  # noqa: D102
        if isinstance(err, BrokenProcessPool):
            return "broken", "the worker process died (killed, out of memory or a crash)"
        return super().verdict(err)

    def restart(self) -> None:  # noqa: D102
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.start()

    def stop(self) -> None:
        """Send SIGTERM to every worker and wait for them (``STOP_GRACE_S`` at most, then SIGKILL).

        A worker stopped by SIGTERM keeps its run's last epoch (its staging directory) and ends within a
        second or two; waiting for it means the driver's last line is true when it prints it.
        """
        if self._executor is None:
            return
        processes = list((getattr(self._executor, "_processes", None) or {}).values())  # shutdown clears it
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes:
            with contextlib.suppress(Exception):
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join(5)

    def close(self) -> None:  # noqa: D102
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def _gpu_count() -> int:
    """CUDA devices this machine shows (without creating a CUDA context, so spawned workers may choose)."""
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no usable CUDA is no GPU
        return 0
