"""What runs in a worker, whatever the executor: one job through the runner, never raising.

:func:`run_job` is the unit every executor ships (a local process, a Ray task, a SLURM array task): it trains
or reuses the job's run and returns an :class:`Outcome`; its output goes to the job's log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from msabench import store
from msabench.core.messages import show_messages
from msabench.core.signals import stop_on_signals
from msabench.errors import MSABenchError
from msabench.sweep.expand import Job


@dataclass
class Outcome:
    """What became of one job."""

    index: int
    label: str
    status: Literal["finished", "reused", "failed"]
    run_dir: str | None = None
    error: str | None = None
    wall_s: float = 0.0
    log: str | None = None
    recorded_wall_s: float | None = None
    """The training time the run directory records, over all attempts (what the ETA learns from)."""
    resumed: str | None = None
    """For a run that carried on from a dead attempt's resume point: where (stage and epochs)."""
    host: str | None = None
    """Where the job ran: the host, with the engine's node or job id when there is one."""
    resources: dict[str, float] | None = None
    """What the engine gave the job (Ray: its assigned resources), if it says."""


@dataclass
class SweepReport:
    """The outcomes of a sweep, in job order."""

    sweep_id: str
    outcomes: list[Outcome]
    elapsed_s: float
    workers: int
    threads: int
    executor: str = "local"

    @property
    def failures(self) -> list[Outcome]:
        """The failed jobs."""
        return [o for o in self.outcomes if o.status == "failed"]


def run_job(
    job: Job,
    output: str,
    wandb: bool | None,
    group: str | None,
    threads: int,
    log: str | None,
    index: int = 0,
) -> Outcome:
    """Run one job (in a worker process): train or reuse, never raise; output goes to ``log`` when given."""
    # Lazy: only a worker process trains, and it loads torch and Lightning after the executor set its threads.
    import torch

    from msabench.runner import execute

    torch.set_num_threads(max(1, threads))
    show_messages()
    started = time.time()
    # SIGTERM to this worker (the driver stopping, a preemption) keeps its run's last epoch and ends the
    # job; SIGINT is the driver's to handle.
    with _redirect_output(log), stop_on_signals((signal.SIGTERM,)):
        try:
            frame = execute(job.request(Path(output), wandb=wandb, sweep_id=group))
        except (
            Exception
        ) as err:  # a failed run must not stop the sweep: its rows and error.log hold the details
            traceback.print_exc()
            message = (str(err) if isinstance(err, MSABenchError) else f"{type(err).__name__}: {err}").strip()
            error = message.splitlines()[0] if message else type(err).__name__
            return Outcome(
                index,
                job.label,
                "failed",
                _run_dir_of(job, output),
                error,
                time.time() - started,
                log,
                host=_where(),
            )
        finally:
            if "msabench.runner.wandb_logging" in sys.modules:
                sys.modules["msabench.runner.wandb_logging"].finish_leftovers()
    status: Literal["finished", "reused"] = "reused" if frame.attrs.get("cached") else "finished"
    return Outcome(
        index,
        job.label,
        status,
        frame.attrs.get("run_dir"),
        None,
        time.time() - started,
        log,
        frame.attrs.get("wall_time_s"),
        host=_where(),
        resumed=frame.attrs.get("resumed"),
    )


def _where() -> str:
    """This host, with the engine's node or job id (``MSABENCH_NODE``, set by the Ray and SLURM executors)."""
    node = os.environ.get("MSABENCH_NODE")
    return f"{socket.gethostname()}:{node}" if node else socket.gethostname()


def _run_dir_of(job: Job, output: str) -> str | None:
    """The run directory a failed job wrote, if it got that far (status ``failed`` under ``output``)."""
    runs = store.run_statuses(Path(output)) if Path(output).exists() else None
    if runs is None or runs.empty:
        return None
    prefix = f"{job.dataset}__{job.method}__{job.train_policy}"
    if job.per_setting:
        prefix += f"__{job.settings[0].name.replace(':', '-')}"
    prefix += f"__s{job.seed}__"
    hits = [d for d in runs["run_dir"] if Path(d).name.startswith(prefix)]
    return hits[-1] if hits else None


@contextlib.contextmanager
def _redirect_output(path: str | None) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors included) to ``path`` for the duration."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
