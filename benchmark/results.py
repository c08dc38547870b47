"""The results store: one directory per run, written atomically, never silently overwritten.

A run directory holds ``config.yaml`` (the resolved config), ``status.json`` (``running`` -> ``finished`` or
``failed``), ``results.csv`` (tidy: one row per test setting x metric) and ``model.ckpt`` (the selected
checkpoint). ``results.csv`` and ``status.json`` are written through a temporary file and ``os.replace``, so a
reader (or a sweep restarted after ``kill -9``) never sees half a file. A run whose status is not ``finished``
is incomplete and is redone from scratch.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pandas as pd

from msabench.errors import OutputError

RESULT_COLUMNS: Final[tuple[str, ...]] = (
    "run_key",
    "status",
    "error",
    "dataset",
    "data_sha256",
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
    "wall_time_s",
    "params",
    "config_hash",
    "msabench_version",
    "git_commit",
)
RESULTS_FILE: Final[str] = "results.csv"
STATUS_FILE: Final[str] = "status.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that readers see either the old file or the whole new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable_dir(path: Path, flag: str) -> None:
    """Refuse, in one line, a directory that is neither writable nor creatable, before any work is done.

    Creates nothing that stays: the first existing ancestor gets a probe directory, removed at once.

    Raises:
        OutputError: ``path`` or an ancestor is a file, or the nearest existing ancestor refuses writes.
    """
    path = Path(path).expanduser()
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{flag} {path}: {probe} is a file, not a directory; give a directory path")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".msabench-write-check-"))
    except OSError as err:
        raise OutputError(
            f"{flag} {path}: cannot write into {probe} ({err.strerror or err}); give a directory you can "
            "write to"
        ) from None


def write_results(run_dir: Path, frame: pd.DataFrame) -> Path:
    """Write a run's tidy results atomically, columns in the canonical order (full precision)."""
    ordered = frame.reindex(columns=[*RESULT_COLUMNS, *[c for c in frame.columns if c not in RESULT_COLUMNS]])
    path = run_dir / RESULTS_FILE
    atomic_write_text(path, ordered.to_csv(index=False, float_format="%.17g"))
    return path


def read_status(run_dir: Path) -> dict[str, Any]:
    """The run's status record; ``{"status": "missing"}`` when it has none (never started or torn)."""
    try:
        return json.loads((run_dir / STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"status": "missing"}


def write_status(run_dir: Path, status: str, **fields: Any) -> None:
    """Record the run's status (``running``, ``finished`` or ``failed``) atomically."""
    atomic_write_text(run_dir / STATUS_FILE, json.dumps({"status": status, **fields}, indent=2, default=str))


def read_run(run_dir: Path) -> pd.DataFrame:
    """The tidy results of one run directory."""
    return pd.read_csv(run_dir / RESULTS_FILE, keep_default_na=True, dtype={"condition": "string"})


def find_run_dirs(root: Path) -> list[Path]:
    """Every run directory under ``root`` (any depth) that holds a results file."""
    return sorted(p.parent for p in Path(root).rglob(RESULTS_FILE) if not p.parent.name.startswith("."))


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
    dirs = {p.parent for name in (STATUS_FILE, RESULTS_FILE) for p in Path(root).rglob(name)}
    rows = []
    for run_dir in sorted(d for d in dirs if not d.name.startswith(".") and ".replaced-" not in d.name):
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
