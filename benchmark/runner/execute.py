"""One run end to end: reuse a finished run, or train in a staging directory and publish it."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from msabench import config as config_lib
from msabench import store
from msabench.core.io import check_writable_dir
from msabench.models.base import count_parameters
from msabench.protocols import Setting
from msabench.runner.console import result_lines, uses_bar
from msabench.runner.identity import stale_reason
from msabench.runner.prepare import prepare
from msabench.runner.request import PreparedRun, RunRequest
from msabench.runner.resume import ResumeClock, ResumeContext, code_identity
from msabench.runner.rows import result_rows
from msabench.runner.stages import fit_stages, load_checkpoint
from msabench.runner.trainer import build_trainer, quiet_lightning


def execute(request: RunRequest) -> pd.DataFrame:
    """Train (unless a finished run with the same key exists), select on validation, test every setting.

    Returns:
        The tidy results of the requested settings (one row per setting x metric).
    """
    quiet_lightning()
    check_writable_dir(Path(request.output), "--output")
    return execute_prepared(prepare(request))


def execute_prepared(prepared: PreparedRun) -> pd.DataFrame:
    """:func:`execute` on a run :func:`prepare` has resolved (its data loaded)."""
    check_writable_dir(Path(prepared.request.output), "--output")
    run_dir = prepared.run_dir
    status = store.read_status(run_dir)
    stale = None
    if status["status"] == "finished" and not prepared.request.rerun:
        stale = stale_reason(status, prepared.code, _recorded_commit(run_dir))
        if stale is None:
            return _reuse(prepared)
        if prepared.request.accept_stale:
            note = f"{run_dir.name}: reused although stale ({stale}), as --accept-stale asks"
            _say(note)
            return _reuse(prepared, stale=note)
    if status["status"] == "finished":  # --rerun or stale: keep the old run, renamed, never overwritten
        kept = store.archive(run_dir)
        if stale is not None:
            where = f"kept as {kept.name}" if kept is not None else "gone meanwhile"
            stale = (
                f"{run_dir.name}: stale, {stale}: trained again (the old run is {where}; --accept-stale "
                "reuses such a run)"
            )
            _say(stale)
    # Anything else there (a failed run, an interrupted run of the in-place layout) stays until this attempt
    # publishes: another attempt may still be at work on it, and its files are evidence until then.
    frame = _train_and_test(prepared)
    if stale is not None:
        frame.attrs.update(stale=stale)
    return frame


def _recorded_commit(run_dir: Path) -> str | None:
    """The git commit a finished run's rows record (None when they record none)."""
    try:
        commits = store.read_run(run_dir)["git_commit"].dropna()
    except (OSError, KeyError, ValueError):
        return None
    return str(commits.iloc[0]) if len(commits) else None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _reuse(prepared: PreparedRun, stale: str | None = None) -> pd.DataFrame:
    """The published run's rows for the requested settings, testing its checkpoint on those it lacks.

    Rows it adds record today's code fingerprint: today's code tested them (on a stale run accepted by
    ``--accept-stale`` they differ from the run's other rows, and the leaderboard says so).
    """
    run_dir = prepared.run_dir
    with store.locked(run_dir):  # two attempts adding settings at once must not drop each other's rows
        status = store.read_status(run_dir)
        existing = store.read_run(run_dir)
        missing = [s for s in prepared.request.settings if s.name not in set(existing["setting"])]
        if missing:
            frame = _evaluate_checkpoint(prepared, missing, status)
            existing = pd.concat([existing, frame], ignore_index=True)
            store.write_results(run_dir, existing)
    wanted = {s.name for s in prepared.request.settings}
    frame = existing[existing["setting"].isin(wanted)].reset_index(drop=True)
    frame.attrs.update(run_dir=str(run_dir), cached=True, wall_time_s=status.get("wall_time_s"))
    if stale is not None:
        frame.attrs.update(stale=stale)
    return frame


def _train_and_test(prepared: PreparedRun) -> pd.DataFrame:
    """Train and test in this attempt's staging directory, then publish it (the first to publish wins).

    A dead attempt's resumable staging directory of the same run, on the same code, is adopted: the run
    carries on from its last finished epoch (:mod:`msabench.runner.resume`).
    """
    with store.Attempt(prepared.run_dir, resume_code=code_identity()) as attempt:
        staged = dataclasses.replace(prepared, run_dir=attempt.dir)
        frame = _train_and_test_in(staged, attempt)
        if not attempt.publish():  # another attempt at this run published first: its results stand
            return _reuse(prepared)
    frame.attrs.update(run_dir=str(prepared.run_dir), cached=False)
    if attempt.resumed_from:
        point = attempt.resumed_from
        frame.attrs.update(resumed=f"{point['epochs']} epochs of {point['stage']}")
    return frame


def _train_and_test_in(prepared: PreparedRun, attempt: store.Attempt) -> pd.DataFrame:
    cfg, run_dir = prepared.cfg, prepared.run_dir
    config_lib.save(cfg, run_dir / "config.yaml")
    started = time.time()
    adopted = attempt.resumed_from
    clock = ResumeClock(before_s=float(adopted["elapsed_s"]) if adopted else 0.0, started=started)
    record = {"run": attempt.run_dir.name, "code": code_identity(), "attempt": attempt.id}
    resume = ResumeContext(record, clock)
    resumed = {"resumed_from": _resumed(run_dir, adopted)} if adopted else {}
    where = {
        **attempt.identity(),
        "node": os.environ.get("MSABENCH_NODE"),  # the engine's node or job id, set by the sweep's executors
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    noted: dict[str, Any] = {"warnings": prepared.data_warnings} if prepared.data_warnings else {}
    noted |= resumed
    noted |= {"code_fingerprint": prepared.code.value, "code_parts": prepared.code.parts()}
    store.write_status(run_dir, "running", started=started, run_key=prepared.run_key, **where, **noted)
    try:
        module, fit_info = fit_stages(prepared, resume)
        module.set_test_settings(prepared.request.settings)
        trainer = build_trainer(cfg, run_dir, callbacks=[], logger=False, profiler=prepared.request.profiler)
        trainer.test(module, datamodule=prepared.datamodule, verbose=False)
        _say_tests(cfg, module.test_results)
        where["device"] = str(trainer.strategy.root_device)
        wall = clock.elapsed()
        info = {
            **fit_info,
            "wall_time_s": wall,
            "params": count_parameters(module.network),
            "device": where["device"],
        }
        frame = result_rows(prepared, module.test_results, info)
        frame.attrs.update(wall_time_s=wall)
        store.write_results(run_dir, frame)
        store.write_status(run_dir, "finished", run_key=prepared.run_key, **(info | where), **noted)
        if cfg.logging.wandb:  # after the results are safe: W&B never decides a run's status
            from msabench.runner import wandb_logging

            wandb_logging.log_test_results(prepared, frame)
        return frame
    except Exception as err:
        (run_dir / "error.log").write_text(traceback.format_exc())
        info = {"wall_time_s": clock.elapsed()}
        frame = result_rows(prepared, {}, info, error=f"{type(err).__name__}: {err}")
        store.write_results(run_dir, frame)
        store.write_status(
            run_dir, "failed", run_key=prepared.run_key, error=str(err), **info, **where, **noted
        )
        attempt.publish()  # a failed run is recorded unless a finished one is there (then that one stands)
        raise


def _resumed(run_dir: Path, adopted: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The attempts a run has resumed from, oldest first: earlier ones, then the one just adopted."""
    earlier = store.read_status(run_dir).get("resumed_from", [])
    point = {k: adopted.get(k) for k in ("attempt", "stage", "epochs", "elapsed_s")}
    return [*earlier, point]


def _evaluate_checkpoint(
    prepared: PreparedRun, settings: Sequence[Setting], status: Mapping[str, Any]
) -> pd.DataFrame:
    """Test a finished run's ``model.ckpt`` on settings it has no rows for."""
    cfg, dm = prepared.cfg, prepared.datamodule
    module = load_checkpoint(prepared)
    dm.test = list(settings)
    module.set_test_settings(settings)
    trainer = build_trainer(cfg, prepared.run_dir, callbacks=[], logger=False)
    trainer.test(module, datamodule=dm, verbose=False)
    _say_tests(cfg, module.test_results)
    facts = ("epochs", "ckpt_epoch", "max_epochs", "patience", "selection", "wall_time_s", "params", "device")
    info = {k: status.get(k) for k in facts}
    return result_rows(prepared, module.test_results, info, settings=settings)


def _say_tests(cfg: DictConfig, results: Mapping[str, Mapping[str, float]]) -> None:
    """Without a bar (a log file), one line per test setting as it is known."""
    if not uses_bar(cfg.trainer.enable_progress_bar):
        for line in result_lines(results):
            print(line, file=sys.stderr, flush=True)
