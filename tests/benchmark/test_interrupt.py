"""SIGINT (Ctrl-C) and SIGTERM (preemption) keep a run's last epoch; the same command resumes from it.

Each test sends a real signal to a real ``msabench run`` or ``msabench sweep`` process and checks its exit
status (130, 143), its one line, the resume point it left, and that the rerun carries on from there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from msabench import store
from msabench.cli import main
from msabench.core.signals import Interrupted, stop_on_signals

RUN = [
    "run",
    "--method",
    "lf_dnn",
    "--protocol",
    "intra",
    "--rate",
    "0.3",
    "data.options.n_scale=0.05",
    "data.batch_size=16",
    "trainer.max_epochs=4",
    "trainer.patience=null",
]
STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _run_signalled_after(args: list[str], epochs: int, signum: int) -> subprocess.CompletedProcess[str]:
    """``msabench <args>`` in a process that sends itself ``signum`` once ``epochs`` epochs are saved."""
    code = textwrap.dedent(
        f"""
        import os, sys, torch
        from msabench.runner import resume

        save = resume.ResumePoint.on_train_epoch_end

        def save_then_signal(self, trainer, module):
            save(self, trainer, module)
            if trainer.current_epoch + 1 == {epochs}:
                os.kill(os.getpid(), {int(signum)})

        resume.ResumePoint.on_train_epoch_end = save_then_signal
        torch.set_num_threads({torch.get_num_threads()})
        from msabench.cli import main
        sys.exit(main({args!r}))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def _values(run_dir: Path) -> pd.Series:
    return store.read_run(run_dir).set_index(["setting", "metric"])["value"].sort_index()


def _run_dir(output: Path) -> Path:
    [run_dir] = store.find_run_dirs(output)
    return run_dir


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_run_keeps_its_last_epoch_and_the_rerun_ends_as_if_never_stopped(
    tmp_path: Path, signum: signal.Signals
) -> None:
    assert main([*RUN, "--output", str(tmp_path / "whole")]) == 0
    output = tmp_path / "stopped"
    stopped = _run_signalled_after([*RUN, "--output", str(output)], 2, signum)

    assert stopped.returncode == STATUS[signum], stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"interrupted by {signum.name}: kept synthetic__lf_dnn__matched__intra@0.3__s1111__"
    )
    assert last.endswith("stage main, 2 epoch(s) trained. Run the same command again to resume from there")
    assert "Traceback" not in stopped.stderr
    [staging] = store.staging_dirs(output)
    assert store.read_resume(staging)["epochs"] == 2
    assert store.find_run_dirs(output) == []  # nothing published: the run is not finished, nor failed

    assert main([*RUN, "--output", str(output)]) == 0
    status = store.read_status(_run_dir(output))
    assert [hop["epochs"] for hop in status["resumed_from"]] == [2]
    assert _values(_run_dir(output)).equals(_values(_run_dir(tmp_path / "whole")))
    assert store.staging_dirs(output) == []


def test_a_signal_before_the_first_epoch_leaves_nothing_and_says_so(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import importlib, os, signal, sys

        def signal_first(*args, **kwargs):  # the data are ready, no epoch has run
            os.kill(os.getpid(), signal.SIGTERM)

        importlib.import_module("msabench.runner.execute").fit_stages = signal_first
        from msabench.cli import main
        sys.exit(main({[*RUN, "--output", str(tmp_path)]!r}))
        """
    )
    stopped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 143, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1] == (
        "interrupted by SIGTERM before a training epoch finished: nothing to resume; the same command "
        "starts afresh"
    )
    assert store.staging_dirs(tmp_path) == [] and store.find_run_dirs(tmp_path) == []


SWEEP = [
    "sweep",
    "--methods",
    "lf_dnn",
    "--workers",
    "1",
    "data.options.n_scale=0.1",
    "trainer.max_epochs=6",
    "trainer.patience=null",
]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_sweep_stops_its_workers_keeps_their_epochs_and_resumes(
    tmp_path: Path, signum: signal.Signals
) -> None:
    command = [sys.executable, "-m", "msabench.cli", *SWEEP, "--rates", "0.3,0.6", "--output", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:  # signal once a worker has saved an epoch
        if any(store.read_resume(d) for d in store.staging_dirs(tmp_path)):
            break
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()
    process.send_signal(signum)  # to the driver only, as a scheduler or `kill PID` would
    _, err = process.communicate(timeout=120)

    assert process.returncode == STATUS[signum], err
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"interrupted by {signum.name}: kept the 0 finished run(s) of 2, and 1 in flight"
    ), err
    assert "Traceback" not in err
    [staging] = store.staging_dirs(tmp_path)
    kept = store.read_resume(staging)["epochs"]
    assert kept >= 1

    assert main([*SWEEP, "--output", str(tmp_path), "--rates", "0.3"]) == 0
    status = store.read_status(_run_dir(tmp_path))
    assert status["status"] == "finished" and status["epochs"] == 6
    assert [hop["epochs"] for hop in status["resumed_from"]] == [kept]


def test_stop_on_signals_restores_the_handlers_it_found() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Interrupted) as stop, stop_on_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs at the next bytecode; never reached
    assert (stop.value.signum, stop.value.exit_status, str(stop.value)) == (15, 143, "interrupted by SIGTERM")
    assert {s: signal.getsignal(s) for s in before} == before
