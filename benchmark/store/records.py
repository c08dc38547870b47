"""The run records: one directory per run, its ``config.yaml``, ``status.json`` and tidy ``results.csv``.

A run directory holds ``config.yaml`` (the resolved config), ``status.json`` (``finished`` or ``failed``, the
attempt, host and device that made it), ``results.csv`` (tidy: one row per test setting x metric) and
``model.ckpt`` (the selected checkpoint). ``results.csv`` and ``status.json`` are written through a temporary
file and ``os.replace`` (:func:`msabench.core.io.atomic_write`), so a reader never sees half a file. How a run
directory comes to be published, whole and once, is :mod:`msabench.store.attempts`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pandas as pd

from msabench.core.io import atomic_write

RESULT_COLUMNS: Final[tuple[str, ...]] = (
    "run_key",
    "status",
    "error",
    "dataset",
    "data_id",
    "data_sha256",
    "data_variant",
    "text_view",
    "method",
    "train_policy",
    "protocol",
    "rate",
    "condition",
    "setting",
    "seed",
    "mask_seed",
    "metric",
    "value",
    "metric_family",
    "selection",
    "ckpt_epoch",
    "epochs",
    "max_epochs",
    "patience",
    "wall_time_s",
    "params",
    "device",
    "config_hash",
    "msabench_version",
    "git_commit",
    "code_fingerprint",
)
RESULTS_FILE: Final[str] = "results.csv"
STATUS_FILE: Final[str] = "status.json"


def write_results(run_dir: Path, frame: pd.DataFrame) -> Path:
    """Write a run's tidy results atomically, columns in the canonical order (full precision)."""
    ordered = frame.reindex(columns=[*RESULT_COLUMNS, *[c for c in frame.columns if c not in RESULT_COLUMNS]])
    path = run_dir / RESULTS_FILE
    atomic_write(path, ordered.to_csv(index=False, float_format="%.17g"))
    return path


def read_status(run_dir: Path) -> dict[str, Any]:
    """The run's status record; ``{"status": "missing"}`` when it has none (never started or torn)."""
    try:
        return json.loads((run_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"status": "missing"}


def write_status(run_dir: Path, status: str, **fields: Any) -> None:
    """Record the run's status (``running``, ``finished`` or ``failed``) atomically."""
    atomic_write(run_dir / STATUS_FILE, json.dumps({"status": status, **fields}, indent=2, default=str))


# Hashes and names are text: a hex key such as 95635704e6017185 would otherwise be read as a float (inf).
TEXT_COLUMNS: Final[tuple[str, ...]] = (
    "run_key",
    "data_id",
    "data_sha256",
    "condition",
    "config_hash",
    "git_commit",
    "msabench_version",
    "code_fingerprint",
)


def read_run(run_dir: Path) -> pd.DataFrame:
    """The tidy results of one run directory."""
    return pd.read_csv(
        run_dir / RESULTS_FILE, keep_default_na=True, dtype=dict.fromkeys(TEXT_COLUMNS, "string")
    )


def _hidden(path: Path, root: Path) -> bool:
    """Whether ``path`` lies in a dot-directory below ``root`` (staging, sweep state, archives of W&B)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    return any(part.startswith(".") for part in parts)


def find_run_dirs(root: Path) -> list[Path]:
    """Every published run directory under ``root`` (any depth) that holds a results file."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(RESULTS_FILE) if not _hidden(p.parent, root))


def read_results(root: Path | Iterable[Path]) -> pd.DataFrame:
    """All tidy rows under one or more result roots (runs and sweeps alike)."""
    roots = [Path(root)] if isinstance(root, str | Path) else [Path(r) for r in root]
    frames = [read_run(d) for r in roots for d in find_run_dirs(r)]
    if not frames:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def run_statuses(root: Path) -> pd.DataFrame:
    """One row per run directory under ``root`` (any depth, with a status record or results).

    Each row holds its ``status`` (``running`` for one in progress or interrupted, ``finished``, ``failed``;
    ``missing`` for results without a status), ``run_key``, ``error`` and ``run_dir``. Runs archived by
    ``--rerun`` are left out.
    """
    root = Path(root)
    dirs = {p.parent for name in (STATUS_FILE, RESULTS_FILE) for p in root.rglob(name)}
    rows = []
    for run_dir in sorted(d for d in dirs if not _hidden(d, root) and ".replaced-" not in d.name):
        status = read_status(run_dir)
        rows.append(
            {
                "run_dir": str(run_dir),
                "status": status.get("status"),
                "run_key": status.get("run_key"),
                "error": status.get("error"),
            }
        )
    return pd.DataFrame(rows, columns=["run_dir", "status", "run_key", "error"])
