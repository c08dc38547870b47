"""A run whose attempt dies carries on from its last epoch in the next attempt, as if it had never stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from msabench import store
from msabench.protocols import Setting
from msabench.runner import RunRequest, execute, identity
from msabench.runner.resume import code_identity

# MMIN: two stages (the second continues from the first's selected weights), a linear-decay schedule, dropout.
_REQUEST: dict[str, Any] = {
    "method": "mmin",
    "extra_blocks": ["smoke"],
    "overrides": [
        "data.options.n_scale=0.05",
        "data.batch_size=16",
        "trainer.max_epochs=4",
        "optim.scheduler.n_const=2",
        "optim.scheduler.n_decay=2",
        "stages.pretrain.trainer.max_epochs=2",
    ],
}
_SETTING = Setting("intra", rate=0.3)


def _request(output: Path) -> RunRequest:
    return RunRequest(settings=[_SETTING], output=output, **_REQUEST)


def _die_at(output: Path, stage: str, epochs: int) -> int:
    """Run the request in a process that dies (``os._exit``: no clean-up) once ``stage`` has ``epochs``."""
    code = textwrap.dedent(
        f"""
        import os, torch
        from pathlib import Path
        from msabench.protocols import Setting
        from msabench.runner import RunRequest, execute
        from msabench.runner import resume

        save = resume.ResumePoint.on_train_epoch_end

        def save_then_die(self, trainer, module):
            save(self, trainer, module)
            if self.points.stage == {stage!r} and trainer.current_epoch + 1 == {epochs}:
                os._exit(9)

        resume.ResumePoint.on_train_epoch_end = save_then_die
        torch.set_num_threads({torch.get_num_threads()})
        setting = Setting("intra", rate=0.3)
        execute(RunRequest(settings=[setting], output=Path({str(output)!r}), **{_REQUEST!r}))
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300).returncode


def _values(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index(["setting", "metric"])["value"].sort_index()


def test_a_killed_run_resumes_at_its_last_epoch_and_ends_as_if_never_stopped(tmp_path: Path) -> None:
    whole = execute(_request(tmp_path / "whole"))

    output = tmp_path / "stopped"
    assert _die_at(output, "main", 2) == 9
    [staging] = store.staging_dirs(output)
    point = store.read_resume(staging)
    assert point is not None
    assert (point["stage"], point["epochs"], point["code"]) == ("main", 2, code_identity())
    assert [p.name for p in staging.glob("checkpoints/*.resume-*")] == [point["checkpoint"]]
    assert (
        store.remove_stale_staging(output) == [] and staging.is_dir()
    )  # progress, kept for the next attempt

    resumed = execute(_request(output))
    run_dir = Path(resumed.attrs["run_dir"])
    assert resumed.attrs["resumed"] == "2 epochs of main"  # what the sweep's progress line says
    assert _values(resumed).equals(_values(whole))  # number for number, the run that was never stopped
    for column in ("epochs", "ckpt_epoch"):
        assert resumed[column].tolist() == whole[column].tolist()
    status = store.read_status(run_dir)
    assert status["status"] == "finished"
    [hop] = status["resumed_from"]
    assert (hop["stage"], hop["epochs"]) == ("main", 2) and hop["attempt"] != status["attempt"]
    assert status["wall_time_s"] >= hop["elapsed_s"]  # the run's time over both attempts
    assert resumed.attrs["wall_time_s"] == status["wall_time_s"]  # what the sweep's estimate learns
    assert not (run_dir / store.RESUME_FILE).exists() and store.staging_dirs(output) == []
    assert not list(run_dir.glob("checkpoints/*.resume-*"))
    # The validation curve is whole: every epoch once, as the uninterrupted run logged it.
    for stage in ("pretrain", "main"):
        curves = [
            pd.read_csv(d / "logs" / stage / "metrics.csv").filter(like="val/").dropna(how="all")
            for d in (Path(whole.attrs["run_dir"]), run_dir)
        ]
        pd.testing.assert_frame_equal(curves[1].reset_index(drop=True), curves[0].reset_index(drop=True))


def test_only_a_dead_attempt_on_the_same_code_is_adopted(tmp_path: Path) -> None:
    run_dir = tmp_path / "synthetic__lf_dnn__complete__s1__k"
    with store.Attempt(run_dir, resume_code="v1") as live:
        store.write_resume(live.dir, run=run_dir.name, code="v1", stage="main", epochs=3, elapsed_s=1.0)
        with store.Attempt(run_dir, resume_code="v1") as other:  # the first is alive: never taken from it
            assert other.resumed_from is None and other.dir != live.dir
        dead = live.dir
        live._lock.close()  # type: ignore[union-attr]  # the process dies: its lock goes with it
        live._lock = None
        with store.Attempt(run_dir, resume_code="v2") as newer_code:  # another code: starts afresh
            assert newer_code.resumed_from is None and newer_code.dir != dead
        assert dead.is_dir()
        with store.Attempt(run_dir, resume_code="v1") as heir:
            assert heir.dir == dead and heir.resumed_from is not None and heir.resumed_from["epochs"] == 3
            with store.Attempt(run_dir, resume_code="v1") as late:  # adopted: it has a live owner again
                assert late.resumed_from is None
            store.write_status(heir.dir, "finished")
            assert heir.publish()
    assert store.read_status(run_dir)["status"] == "finished" and not (run_dir / store.RESUME_FILE).exists()


def test_a_resumable_staging_directory_goes_once_its_run_is_finished(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    attempt = store.Attempt(run_dir, resume_code="v1").__enter__()
    store.write_resume(attempt.dir, run=run_dir.name, code="v1", stage="main", epochs=1, elapsed_s=1.0)
    attempt._lock.close()  # type: ignore[union-attr]  # dead
    assert store.remove_stale_staging(tmp_path) == [] and attempt.dir.is_dir()
    run_dir.mkdir()
    store.write_status(run_dir, "finished")
    assert store.remove_stale_staging(tmp_path) == [attempt.dir]


@pytest.mark.parametrize("torn", ["{", "[]"])
def test_a_torn_resume_point_is_no_resume_point(tmp_path: Path, torn: str) -> None:
    (tmp_path / store.RESUME_FILE).write_text(torn)
    assert store.read_resume(tmp_path) is None


def test_the_code_identity_follows_the_python_source_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fake_source_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "layer.py").write_text("WIDTH = 8\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(identity, "_SOURCE_PACKAGES", ("fake_source_pkg",))

    def digest() -> str:
        identity.source_digest.cache_clear()
        return identity.source_digest()

    try:
        first = digest()
        (package / "README.md").write_text("documentation is not code")
        assert digest() == first
        (package / "sub" / "layer.py").write_text("WIDTH = 16\n")
        assert digest() != first
    finally:
        identity.source_digest.cache_clear()
