"""Executors other than Ray: local devices and threads, resources checks, the CLI, SLURM via submitit."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from msabench import store
from msabench import sweep as sw
from msabench.cli import main
from msabench.errors import ConfigError
from msabench.sweep import executors


def test_local_workers_get_their_own_device() -> None:
    assert executors.worker_devices(4, 2, None) == ["0", "1", "0", "1"]  # two runs per GPU
    assert executors.worker_devices(2, 4, None) == ["0", "1"]
    assert executors.worker_devices(2, 2, 0) == ["", ""]  # --gpus-per-run 0: CPU runs, GPUs hidden
    assert executors.worker_devices(2, 0, None) is None  # no GPU: nothing to choose


def test_worker_start_takes_one_device_and_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = multiprocessing.get_context("spawn").Queue()
    for device in ("1", "0"):
        queue.put(device)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    for var in executors.THREAD_VARS:
        monkeypatch.setenv(var, "8")
    threads = torch.get_num_threads()
    handler = signal.getsignal(signal.SIGINT)
    try:
        executors._init_worker(1, queue)
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "1" and os.environ["OMP_NUM_THREADS"] == "1"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
        signal.signal(signal.SIGINT, handler)
    assert queue.get(timeout=5) == "0"  # the next worker's


def test_local_threads_come_from_cpus_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors, "available_cores", lambda: 8)
    assert executors.LocalBackend(2).threads == 4
    assert executors.LocalBackend(2, sw.Resources(cpus_per_run=3)).threads == 3


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (sw.Resources(gpus_per_run=1.5), "fraction of one GPU"),
        (sw.Resources(cpus_per_run=0), "--cpus-per-run must be positive"),
        (sw.Resources(memory_gb=-1), "--memory-gb must be positive"),
    ],
)
def test_impossible_resources_are_one_line(resources: sw.Resources, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        sw.run_sweep([], tmp_path, resources=resources)


def test_cli_errors_for_executors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["sweep", "--methods", "lf_dnn", "--rates", "0", "--output", str(tmp_path)]
    assert main([*args, "--gpus-per-run", "2.5", "trainer.fast_dev_run=true"]) == 2
    assert "fraction of one GPU" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's own error
        main([*args, "--executor", "dask"])
    assert "invalid choice" in capsys.readouterr().err


def test_missing_engine_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def no_engines(name: str, *args: Any, **kwargs: Any) -> Any:
        if name in ("ray", "submitit"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_engines)
    with pytest.raises(ConfigError, match=r"pip install 'msabench\[ray\]'"):
        sw.run_sweep([], tmp_path, executor="ray")
    with pytest.raises(ConfigError, match=r"pip install 'msabench\[slurm\]'"):
        sw.run_sweep([], tmp_path, executor="slurm")


def test_submitit_runs_the_small_grid_to_the_same_leaderboard(small_grid: Any, tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    root = tmp_path / "runs"
    report = sw.run_sweep(
        small_grid.jobs,
        root,
        executor="slurm-local",
        resources=sw.Resources(cpus_per_run=1, time_limit_min=10),
    )
    assert [o.status for o in report.outcomes] == ["finished", "finished"], report.outcomes
    pd.testing.assert_frame_equal(small_grid.wide(root), small_grid.leaderboard)
    assert store.staging_dirs(root) == []
    again = sw.run_sweep(small_grid.jobs, root, workers=0, resources=sw.Resources(cpus_per_run=1))
    assert [o.status for o in again.outcomes] == ["reused", "reused"]  # and the local executor reuses them


def test_slurm_job_that_ended_without_a_result_is_resubmitted_and_a_raising_one_failed(
    tmp_path: Path,
) -> None:
    submitit = pytest.importorskip("submitit")
    from msabench.sweep.slurm_executor import SlurmBackend, SlurmTask

    backend = SlurmBackend(sw.Resources(cpus_per_run=4, time_limit_min=30), tmp_path, tmp_path / "slurm")
    lost = submitit.core.utils.UncompletedJobError("Job 12_0 has not produced any output (state: NODE_FAIL)")
    assert backend.verdict(lost)[0] == "lost" and "NODE_FAIL" in backend.verdict(lost)[1]
    raised = submitit.core.utils.FailedJobError("Traceback (most recent call last):\n  ...\nValueError: boom")
    assert backend.verdict(raised) == ("failed", "ValueError: boom")
    assert backend.threads == 4
    # preemption and the time limit requeue the same call, which then goes through the results store
    requeued = SlurmTask().checkpoint("fn", "root", "token")
    assert isinstance(requeued, submitit.helpers.DelayedSubmission) and requeued.args == (
        "fn",
        "root",
        "token",
    )
