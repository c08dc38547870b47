"""The SLURM executor, through submitit: the runs of a sweep as array jobs with explicit time limits.

- One array per submission round (the whole sweep at first), each task with ``--cpus-per-run`` cores,
  ``--memory-gb``, whole GPUs (SLURM does not split one GPU between jobs: ``--gpus-per-run 0.25`` asks for
  one) and ``--time-limit`` minutes on ``--partition``.
- Preemption and the time limit: submitit requeues the task (it is ``Checkpointable``), and the requeued task
  goes through the results store like any attempt: a run that finished is reused, one that did not is
  trained again from scratch in a staging directory of its own, so a preempted attempt can never overwrite
  what its successor publishes.
- A task that ends without a result (a node failure, the out-of-memory killer) is submitted again by the
  sweep's driver, once; a run that raised is recorded as failed.
- Each task first checks, from its node, that it sees the driver's results root and can ``flock`` in it.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from msabench import store
from msabench.core.io import atomic_write
from msabench.errors import ConfigError
from msabench.sweep.executors import THREAD_VARS, Backend, BackendRequest, Resources, Verdict
from msabench.sweep.worker import Outcome

try:
    from submitit.helpers import Checkpointable
except ImportError:  # the extra is not installed: SlurmBackend.start says how to get it
    Checkpointable = object  # type: ignore[assignment,misc]


def _import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit: pip install 'msabench[slurm]'") from None
    return submitit


def _task(fn: Callable[..., Outcome], root: str, token: str, *args: Any) -> Outcome:
    """One run in a SLURM task: check the shared root from this node, threads from its CPUs, then the run."""
    problem = store.check_shared_root(Path(root), token)
    job, index = args[0], args[6]
    if problem:
        return Outcome(index, job.label, "failed", None, problem)
    for var in THREAD_VARS:
        os.environ[var] = str(args[4])
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job_id:
        os.environ["MSABENCH_NODE"] = f"{job_id}_{task}" if task else job_id
    return fn(*args)


class SlurmTask(Checkpointable):
    """:func:`_task`, requeued as it is on preemption or at the time limit (the store resumes it)."""

    def __call__(self, *args: Any) -> Outcome:
        return _task(*args)


class SlurmBackend(Backend):
    """Runs as SLURM array jobs (``cluster="local"``: submitit's local executor, for tests and debugging).

    Args:
        resources: per-run resources, partition and time limit.
        output: the results root (on a filesystem every node shares).
        folder: where submitit keeps its job files and logs.
        cluster: ``slurm`` (default) or ``local``.
    """

    name = "slurm"

    @classmethod
    def from_request(cls, request: BackendRequest) -> SlurmBackend:  # noqa: D102
        return cls(request.resources, request.output, request.state / "slurm")

    def __init__(self, resources: Resources, output: Path, folder: Path, cluster: str = "slurm") -> None:
        self.resources = resources
        self.output = Path(output)
        self.folder = Path(folder)
        self.cluster = cluster
        self.poll_s = 0.5 if cluster == "local" else 10.0
        self.slots = 1 << 30  # SLURM queues and runs them (--array parallelism is the cluster's)
        self.threads = max(1, int(resources.cpus_per_run or 1))
        self.notes: list[str] = []
        self._executor: Any = None
        self._token = ""
        self._watched: list[tuple[Any, Future]] = []
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()

    def start(self) -> None:  # noqa: D102
        submitit = _import_submitit()
        problem = store.check_shared_root(self.output)
        if problem:
            raise ConfigError(problem)
        self._token = secrets.token_hex(8)
        atomic_write(self.output / ".sweeps" / "shared-check", self._token)
        self._executor = submitit.AutoExecutor(folder=str(self.folder), cluster=self.cluster)
        params: dict[str, Any] = {
            "name": "msabench",
            "timeout_min": int(self.resources.time_limit_min),
            "cpus_per_task": self.threads,
        }
        if self.resources.memory_gb:
            params["mem_gb"] = float(self.resources.memory_gb)
        gpus = self.resources.gpus_per_run or 0
        if gpus and self.cluster != "local":
            params["gpus_per_node"] = math.ceil(gpus)
            if gpus != math.ceil(gpus):
                self.notes.append(
                    f"SLURM allocates whole GPUs: each run gets {math.ceil(gpus)}, not {gpus:g}"
                )
        if self.resources.partition:
            params["slurm_partition"] = self.resources.partition
        self._executor.update_parameters(**params)
        self._watcher = threading.Thread(target=self._watch, name="msabench-slurm-watch", daemon=True)
        self._watcher.start()

    def submit_many(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Future]:  # noqa: D102
        task = SlurmTask()
        with self._executor.batch():  # one array job
            jobs = [self._executor.submit(task, fn, str(self.output), self._token, *args) for args in calls]
        futures: list[Future] = [Future() for _ in jobs]
        with self._lock:
            self._watched += list(zip(jobs, futures, strict=True))
        return futures

    def _watch(self) -> None:
        while not self._closing.wait(self.poll_s):
            with self._lock:
                watched = list(self._watched)
            for job, future in watched:
                if not job.done():
                    continue
                try:
                    future.set_result(job.result())
                except BaseException as err:  # noqa: BLE001 - handed to the driver through the future
                    future.set_exception(err)
                with self._lock:
                    self._watched.remove((job, future))

    def verdict(self, err: BaseException) -> tuple[Verdict, str]:  # noqa: D102
        submitit = _import_submitit()
        if isinstance(err, submitit.core.utils.FailedJobError):  # the run raised (a subclass of the next)
            lines = [line for line in str(err).strip().splitlines() if line.strip()]
            return "failed", (lines[-1] if lines else "the SLURM job failed")[:300]
        if isinstance(err, submitit.core.utils.UncompletedJobError):
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            return "lost", f"the SLURM job ended without a result ({first[:200]})"
        return super().verdict(err)

    def stop(self) -> None:  # noqa: D102
        with self._lock:
            watched = list(self._watched)
        for job, _ in watched:
            try:
                job.cancel(check=False)
            except Exception:  # noqa: BLE001, S110 - ended meanwhile
                pass
        self.close()

    def close(self) -> None:  # noqa: D102
        self._closing.set()
        if self._watcher is not None:
            self._watcher.join(timeout=self.poll_s + 5)


class LocalSlurmBackend(SlurmBackend):
    """The SLURM path through submitit's local executor, on this machine (tests, debugging)."""

    @classmethod
    def from_request(cls, request: BackendRequest) -> SlurmBackend:  # noqa: D102
        return cls(request.resources, request.output, request.state / "slurm", cluster="local")
