"""Weights & Biases logging: one W&B run per msabench run (all its stages), and one for the leaderboard.

Each run logs its resolved config, its training curves (through Lightning's ``WandbLogger``), and the test
metrics of every setting as a table plus a metric-vs-rate line chart; it is grouped by sweep and tagged with
dataset, method and policy. Logging never stops or fails a run:

- ``WANDB_MODE=disabled`` turns it off; ``WANDB_MODE=offline`` (or no credentials: no ``WANDB_API_KEY`` and no
  ``api.wandb.ai`` entry in ``~/.netrc``) writes the run into the run directory (``<run_dir>/wandb/``), to be
  uploaded later with ``wandb sync <run_dir>/wandb/offline-run-*``;
- online start-up is bounded by ``INIT_TIMEOUT_S`` and falls back to offline; any other W&B error is a
warning.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import math
import netrc
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlparse

import pandas as pd

INIT_TIMEOUT_S: Final[float] = 30.0
Mode = Literal["online", "offline", "disabled"]
_RUNS: dict[str, Any] = {}  # run directory -> its live W&B run (one per msabench run, shared by its stages)


# What this module reads of a prepared run and of a leaderboard, typed structurally: the runner calls this
# module and the CLI hands it the leaderboard, so importing either here would point an arrow upwards.
class PreparedRun(Protocol):
    """A run prepared by :func:`msabench.runner.prepare` (the attributes read here)."""

    request: Any
    method_cls: Any
    cfg: Any
    policy_name: str
    run_key: str
    run_dir: Path


class Leaderboard(Protocol):
    """A leaderboard built by :func:`msabench.leaderboard.build` (the attributes read here)."""

    points: pd.DataFrame
    wide: pd.DataFrame
    summaries: pd.DataFrame
    reference: Any


class WandbWarning(UserWarning):
    """W&B could not log something; the run itself goes on."""


def resolve_mode() -> Mode:
    """``disabled`` / ``offline`` from ``WANDB_MODE``; else online with credentials, offline without."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env == "disabled":
        return "disabled"
    if env in ("offline", "dryrun"):
        return "offline"
    return "online" if has_credentials() else "offline"


def has_credentials() -> bool:
    """Whether an API key is configured (environment or ``~/.netrc``), without contacting any server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def start_run(
    *,
    project: str,
    name: str,
    save_dir: Path,
    config: Mapping[str, Any] | None = None,
    group: str | None = None,
    tags: Iterable[str] = (),
    job_type: str = "run",
    mode: Mode | None = None,
    run_id: str | None = None,
) -> Any | None:
    """Start a W&B run, online if possible, else offline into ``save_dir``; None (a warning) if neither.

    A ``run_id`` makes the start a resume when W&B already has a run of that id (``resume="allow"``).
    """
    mode = mode or resolve_mode()
    if mode == "disabled":
        return None
    try:
        import wandb
    except ImportError:
        warnings.warn(
            "wandb is not installed: W&B logging is off (pip install wandb)", WandbWarning, stacklevel=2
        )
        return None
    save_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {
        "project": project,
        "name": name,
        "group": group,
        "tags": sorted({str(t) for t in tags if t}),
        "job_type": job_type,
        "config": dict(config or {}),
        "dir": str(save_dir),
        "reinit": "finish_previous",
    }
    if run_id is not None:
        kwargs |= {"id": run_id, "resume": "allow"}
    for attempt in ("online", "offline") if mode == "online" else ("offline",):
        try:
            settings = wandb.Settings(
                init_timeout=INIT_TIMEOUT_S, console="off", silent=True, x_disable_stats=True
            )
            run = wandb.init(mode=attempt, settings=settings, **kwargs)
        except Exception as err:  # noqa: BLE001 - W&B must never fail a run
            warnings.warn(
                f"W&B {attempt} start failed ({type(err).__name__}: {err})", WandbWarning, stacklevel=2
            )
            continue
        with contextlib.suppress(Exception):
            run.define_metric("trainer/global_step")
            run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        return run
    return None


def run_id(staging: Path) -> str:
    """The W&B run id of an attempt's staging directory.

    An attempt that adopts a dead one's staging directory (:mod:`msabench.runner.resume`) keeps its name, so
    the resumed training goes on in the same W&B run; a fresh attempt, ``--rerun`` included, starts a new one.
    """
    return hashlib.sha256(Path(staging).name.encode()).hexdigest()[:32]


def _run_for(prepared: PreparedRun) -> Any | None:
    key = str(prepared.run_dir)
    if key in _RUNS:
        return _RUNS[key]
    finish_leftovers()  # a run of this process that never reached its test failed
    cfg = prepared.cfg
    from msabench.config.schema import plain_dict

    config = plain_dict(cfg)
    config.update(
        run_key=prepared.run_key,
        train_policy_resolved=prepared.policy_name,
        test_settings=[s.name for s in prepared.request.settings],
    )
    run = start_run(
        project=cfg.logging.wandb_project,
        name=prepared.run_dir.name,
        save_dir=prepared.run_dir,
        config=config,
        group=prepared.request.sweep_id or cfg.logging.wandb_group,
        tags=(cfg.dataset, prepared.method_cls.method_name, prepared.policy_name),
        run_id=run_id(prepared.run_dir),
    )
    if run is not None:
        _RUNS[key] = run
    return run


def stage_logger(prepared: PreparedRun, stage: str, n_stages: int = 1) -> Any | None:
    """A Lightning ``WandbLogger`` on the run's W&B run (metrics prefixed by stage when there are several)."""
    try:
        run = _run_for(prepared)
        if run is None:
            return None
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(experiment=run, prefix=stage if n_stages > 1 else "")
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"W&B logger not created ({type(err).__name__}: {err})", WandbWarning, stacklevel=2)
        return None


def log_test_results(prepared: PreparedRun, frame: pd.DataFrame) -> None:
    """Log the test metrics of every setting (a table, a metric-vs-rate chart per protocol); end the run."""
    try:
        run = _run_for(prepared)
        if run is None:
            return
        import wandb

        rows = frame[frame["metric"].notna()]
        table = rows[["setting", "protocol", "rate", "condition", "mask_seed", "metric", "value"]]
        payload: dict[str, Any] = {"test/results": wandb.Table(dataframe=_table_ready(table))}
        for protocol, group in rows[rows["rate"].notna()].groupby("protocol"):
            wide = group.pivot_table(
                index="rate", columns="metric", values="value", aggfunc="first"
            ).sort_index()
            if len(wide) < 2:
                continue
            payload[f"test/{protocol}_vs_rate"] = wandb.plot.line_series(
                xs=[float(r) for r in wide.index],
                ys=[wide[m].tolist() for m in wide.columns],
                keys=[str(m) for m in wide.columns],
                title=f"test metrics vs {protocol} missing rate",
                xname="rate",
            )
        run.log(payload)
        for _, r in rows.iterrows():
            run.summary[f"test/{r['setting']}/{r['metric']}"] = float(r["value"])
        run.finish()
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"W&B test logging failed ({type(err).__name__}: {err})", WandbWarning, stacklevel=2)
    finally:
        _RUNS.pop(str(prepared.run_dir), None)


def log_leaderboard(
    board: Leaderboard, plots: Iterable[Path], save_dir: Path, project: str = "msabench", source: str = ""
) -> Any | None:
    """Log the leaderboard (wide, long and summary tables) with its plots as one W&B run; returns the run."""
    try:
        reference = board.reference.label if board.reference else None
        run = start_run(
            project=project,
            name=f"leaderboard {source}".strip(),
            save_dir=Path(save_dir),
            job_type="leaderboard",
            tags=("leaderboard", *sorted(set(board.points.get("dataset", [])))),
            config={"results": source, "reference": reference},
        )
        if run is None:
            return None
        import wandb

        payload: dict[str, Any] = {
            "leaderboard/wide": wandb.Table(dataframe=_table_ready(board.wide)),
            "leaderboard/points": wandb.Table(dataframe=_table_ready(board.points)),
            "leaderboard/summaries": wandb.Table(dataframe=_table_ready(board.summaries)),
        }
        payload.update({f"plots/{Path(p).stem}": wandb.Image(str(p)) for p in plots})
        run.log(payload)
        run.finish()
        return run
    except Exception as err:  # noqa: BLE001
        warnings.warn(
            f"W&B leaderboard logging failed ({type(err).__name__}: {err})", WandbWarning, stacklevel=2
        )
        return None


def _table_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of one type each (W&B tables reject mixed columns): objects as text, numbers as floats."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype) in ("string", "boolean"):
            out[column] = [
                "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in out[column]
            ]
        elif out[column].dtype.kind in "iub":
            out[column] = out[column].astype(float)
    return out.reset_index(drop=True)


def finish_leftovers() -> None:
    """End, as failed, the W&B runs whose msabench run ended without its test (an exception, an interrupt).

    Called at exit, before a new run starts, and by sweep workers after each job (worker processes end with
    ``os._exit``, which skips ``atexit``).
    """
    for key in list(_RUNS):
        run = _RUNS.pop(key)
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)


atexit.register(finish_leftovers)
