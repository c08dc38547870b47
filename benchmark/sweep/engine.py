"""The sweep's driver: hands jobs to an executor, records outcomes, retries what died, reports.

Resuming is the runner's: every run has a key (a hash of everything that determines it), a finished run is
reused, and a run that never published (an attempt killed at any point, ``kill -9`` of the whole sweep
included) is redone from scratch. Each attempt trains in its own staging directory and publishes with one
rename, so a restarted sweep ends with exactly the files of an uninterrupted one. A failing run leaves rows
with its error; the sweep goes on and reports the failures at the end.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final, TextIO

from msabench import store
from msabench.core.io import atomic_write, slug
from msabench.core.messages import duration
from msabench.core.signals import Interrupted
from msabench.errors import ConfigError
from msabench.sweep.backends import make_backend
from msabench.sweep.executors import Backend, Resources
from msabench.sweep.expand import Job, sweep_id
from msabench.sweep.progress import Progress
from msabench.sweep.worker import Outcome, SweepReport, run_job

STATE_DIR: Final[str] = ".sweeps"
LOCK_FILE: Final[str] = ".sweep.lock"
# A job whose process died without the engine retrying it (a broken local pool, a SLURM job that ended without
# a result) is retried once by the driver: in a local pool the death may have been another job's, since a dead
# worker breaks every job in flight.
MAX_ATTEMPTS: Final[int] = 2


@contextlib.contextmanager
def _sweep_lock(output: Path) -> Iterator[None]:
    """One sweep at a time per output directory (a second one would redo the first one's runs)."""
    output.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        yield
        return
    with open(output / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another sweep is writing to {output}: wait for it to end, or give another --output"
            ) from None
        except OSError as err:
            raise ConfigError(
                f"the results root {output} does not support flock ({err.strerror}): give an --output on a "
                "filesystem that does (e.g. Lustre mounted with -o flock)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_sweep(
    jobs: Sequence[Job],
    output: Path,
    *,
    workers: int = 1,
    name: str = "sweep",
    wandb: bool | None = None,
    stream: TextIO | None = None,
    executor: str = "local",
    resources: Resources | None = None,
    executor_factory: Callable[[int, int], Executor] | None = None,
    job_fn: Callable[..., Outcome] = run_job,
) -> SweepReport:
    """Run the jobs on an executor, each in its own process with its share of the cores.

    Args:
        jobs: from :func:`~msabench.sweep.expand.expand`.
        output: the results root (one run directory per job; the sweep's state in ``.sweeps/<id>/``). On a
            cluster, a path every node sees.
        workers: ``local``: processes at once; 0 runs every job in this process (debugging).
        name: the sweep's name (its id is the name and a hash of its jobs).
        wandb: log each run to W&B (None: the config's ``logging.wandb``).
        stream: where progress goes (``sys.stderr`` from the CLI; None: silent).
        executor: ``local``, ``ray`` or ``slurm`` (``slurm-local``: submitit's local executor).
        resources: per-run resources and the engine's address or partition.
        executor_factory: ``local`` only: ``(workers, threads) -> Executor`` instead of the process pool.
        job_fn: runs one job; :func:`~msabench.sweep.worker.run_job` by default.

    Returns:
        The report; the sweep never raises for a failed run.
    """
    output = Path(output).absolute()  # engines' workers start elsewhere
    group = sweep_id(name, jobs)
    state = output / STATE_DIR / group
    with _sweep_lock(output):
        backend = make_backend(
            executor,
            workers=workers,
            resources=resources or Resources(),
            output=output,
            state=state,
            factory=executor_factory,
        )
        store.remove_stale_staging(output)
        backend.start()
        progress = Progress(
            [job.timing_group for job in jobs], workers=min(backend.slots, max(len(jobs), 1)), stream=stream
        )
        try:
            progress.event(
                f"sweep {group}: {len(jobs)} runs on {backend.name}, {progress.workers} at a time, "
                f"{backend.threads} thread(s) each -> {output}"
            )
            for note in backend.notes:
                progress.event(f"note: {note}")
            outcomes = _drive(
                jobs, backend, progress, state, group, str(output), wandb, job_fn, logs=workers != 0
            )
        except BaseException as stop:
            backend.stop()
            if isinstance(stop, Interrupted):
                stop.kept.append(_what_a_stop_kept(output, progress))
            raise
        finally:
            progress.close()
        backend.close()
        store.remove_stale_staging(output)  # attempts that died (and were retried) left theirs
    ordered = [outcomes[i] for i in range(len(jobs))]
    return SweepReport(
        group, ordered, time.time() - progress.started, progress.workers, backend.threads, backend.name
    )


def _what_a_stop_kept(output: Path, progress: Progress) -> str:
    """What a stopped sweep leaves for its rerun: the runs it finished, and those in flight at an epoch."""
    resumable = [d for d in store.staging_dirs(output) if store.read_resume(d) is not None]
    return (
        f"the {progress.trained + progress.reused} finished run(s) of {progress.total}, and {len(resumable)} "
        "in flight at their last finished epoch"
    )


def _drive(
    jobs: Sequence[Job],
    backend: Backend,
    progress: Progress,
    state: Path,
    group: str,
    output: str,
    wandb: bool | None,
    job_fn: Callable[..., Outcome],
    logs: bool,
) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    attempts = [0] * len(jobs)
    pending = deque(dispatch_order(jobs))
    in_flight: dict[Future, int] = {}
    while pending or in_flight:
        batch: list[tuple[int, tuple[Any, ...]]] = []
        while pending and len(in_flight) + len(batch) < backend.slots:
            index = pending.popleft()
            attempts[index] += 1
            name = slug(jobs[index].label, keep="-_.@")
            log = str(state / "logs" / f"{index:04d}_{name}.log") if logs else None
            batch.append((index, (jobs[index], output, wandb, group, backend.threads, log, index)))
        if batch:
            futures = backend.submit_many(job_fn, [args for _, args in batch])
            for future, (index, _) in zip(futures, batch, strict=True):
                in_flight[future] = index
                progress.start(index)
        done, _ = wait(list(in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            index = in_flight.pop(future)
            try:
                outcome = future.result()
            except BaseException as err:  # noqa: BLE001 - the backend says what it means
                verdict, message = backend.verdict(err)
                if verdict == "failed":
                    outcome = Outcome(index, jobs[index].label, "failed", None, message)
                else:
                    broken |= verdict == "broken"
                    _requeue_or_fail(index, jobs, attempts, pending, outcomes, progress, message)
                    continue
            _record(outcome, outcomes, progress)
        if broken:
            for future in list(in_flight):  # every job of a broken pool fails; give them another go
                message = "the worker process died (killed, out of memory or a crash)"
                _requeue_or_fail(in_flight.pop(future), jobs, attempts, pending, outcomes, progress, message)
            backend.restart()
        if done:
            _write_manifest(state, group, jobs, outcomes)
        progress.tick()
    return outcomes


def dispatch_order(jobs: Sequence[Job]) -> list[int]:
    """The order in which jobs start: seed by seed as listed; within a seed, one-model jobs first.

    A job that trains one model for the whole grid trains under a policy over every setting and is tested on
    all of them, while a matched policy's jobs are one model and one setting each: started last, these short
    jobs fill the workers' ends, so the workers finish together instead of one running a long job alone at
    the end (longest-first scheduling, with the number of settings as the estimate). Reports keep the
    listed order.
    """
    seed_rank: dict[int, int] = {}
    for job in jobs:
        seed_rank.setdefault(job.seed, len(seed_rank))
    return sorted(range(len(jobs)), key=lambda i: (seed_rank[jobs[i].seed], jobs[i].per_setting))


def _requeue_or_fail(
    index: int,
    jobs: Sequence[Job],
    attempts: list[int],
    pending: deque,
    outcomes: dict[int, Outcome],
    progress: Progress,
    message: str,
) -> None:
    if attempts[index] < MAX_ATTEMPTS:
        progress.requeue(index)
        pending.appendleft(index)
        progress.event(f"retry   {jobs[index].label}: {message}")
    else:
        _record(
            Outcome(index, jobs[index].label, "failed", None, f"{message}, {attempts[index]} times"),
            outcomes,
            progress,
        )


def _record(outcome: Outcome, outcomes: dict[int, Outcome], progress: Progress) -> None:
    outcomes[outcome.index] = outcome
    # A reused or resumed run's own attempt says little about how long a run takes; its records say it all.
    recorded = outcome.status == "reused" or (
        outcome.resumed is not None and outcome.recorded_wall_s is not None
    )
    wall = outcome.recorded_wall_s if recorded else outcome.wall_s
    progress.finish(outcome.index, outcome.status, wall, outcome.host)
    where = f" on {outcome.host}" if outcome.host and len(progress.hosts) > 1 else ""
    resumed = f", resumed after {outcome.resumed}" if outcome.resumed else ""
    match outcome.status:
        case "finished":
            progress.event(f"done    {outcome.label} ({duration(outcome.wall_s)}{resumed}){where}")
        case "reused":
            progress.event(f"reused  {outcome.label}")
        case _:
            progress.event(f"FAILED  {outcome.label}: {outcome.error}")


def _write_manifest(state: Path, group: str, jobs: Sequence[Job], outcomes: Mapping[int, Outcome]) -> None:
    entries = []
    for i, job in enumerate(jobs):
        outcome = outcomes.get(i)
        entries.append(
            {
                **job.describe(),
                "label": job.label,
                **(
                    {k: v for k, v in asdict(outcome).items() if k not in ("index", "label")}
                    if outcome
                    else {"status": "pending"}
                ),
            }
        )
    atomic_write(state / "jobs.json", json.dumps({"sweep_id": group, "jobs": entries}, indent=1))
