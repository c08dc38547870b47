"""Reading the results store into one tidy frame, and choosing the training seeds to aggregate."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pandas as pd
from omegaconf import OmegaConf

from msabench import store
from msabench.config import config_hash
from msabench.core.io import check_results_roots
from msabench.core.parse import parse_seeds
from msabench.errors import ConfigError, ResultsWarning


def load(roots: Path | Sequence[Path]) -> pd.DataFrame:
    """Every tidy row written under ``roots`` (runs and sweeps alike), with ``config_id`` and ``run_dir``.

    Runs archived by ``--rerun`` (``*.replaced-*``) are left out. ``config_id`` identifies the configuration
    apart from the training seed (and the data), so that runs made with different configs are never
    averaged together as if they were seeds.
    """
    roots = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
    check_results_roots(roots)
    frames = []
    for root in roots:
        for run_dir in store.find_run_dirs(root):
            if ".replaced-" in run_dir.name:
                continue
            problem = _status_problem(run_dir)
            if problem is not None:
                warnings.warn(
                    f"{run_dir}: {problem}; left out of the leaderboard (run it again to replace it)",
                    ResultsWarning,
                    stacklevel=2,
                )
                continue
            frame = _read_rows(run_dir)
            frame["run_dir"] = str(run_dir)
            frame["config_id"] = _config_id(run_dir, frame)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*store.RESULT_COLUMNS, "run_dir", "config_id"])
    return pd.concat(frames, ignore_index=True)


# A run's rows are aggregated by these columns; a results file without them is not a run's.
REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    "run_key",
    "status",
    "dataset",
    "method",
    "train_policy",
    "seed",
    "metric",
    "value",
)
NUMERIC_COLUMNS: Final[tuple[str, ...]] = ("seed", "rate", "value")


def _status_problem(run_dir: Path) -> str | None:
    """Why the run's ``status.json`` does not vouch for its rows (None: finished or failed, as recorded).

    A published run always has its status record: without one (or with one that is torn or says the run
    never ended) nothing says what made the rows or whether they are whole, so they are left out with a
    warning rather than pooled silently or made to block every other run's leaderboard.
    """
    path = run_dir / store.STATUS_FILE
    if not path.is_file():
        return f"no {store.STATUS_FILE}"
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{store.STATUS_FILE} cannot be read ({type(err).__name__})"
    status = record.get("status") if isinstance(record, dict) else None
    if status not in ("finished", "failed"):
        return f"{store.STATUS_FILE} says status {status!r}, not finished or failed"
    return None


def _read_rows(run_dir: Path) -> pd.DataFrame:
    """A run's tidy rows, checked before they are aggregated.

    A results file that is empty, not CSV, lacks a column or holds a number that is not one is refused in
    one line naming it: a leaderboard must not rest on a damaged file.
    """
    path = run_dir / store.RESULTS_FILE
    fix = "move the run directory aside or run it again with --rerun"
    try:
        frame = store.read_run(run_dir)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{path} is not a results table ({reason}): {fix}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing or frame.empty:
        what = f"has no column {', '.join(missing)}" if missing else "has no rows"
        raise ConfigError(f"{path} {what}: {fix}")
    for column in (c for c in NUMERIC_COLUMNS if c in frame.columns):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column][numbers.isna() & frame[column].notna()]
        if column == "seed" and not bad.size:
            bad = frame[column][numbers.isna() | (numbers % 1 != 0)]
        if bad.size:
            raise ConfigError(f"{path}: column {column} holds {bad.iloc[0]!r}, not a number: {fix}")
        frame[column] = numbers
    return frame


def select_seeds(tidy: pd.DataFrame, seeds: str | Sequence[int]) -> pd.DataFrame:
    """The rows of the given training seeds (``"1111,1112"``, ``"1111:1113"`` or a list).

    A partial sweep runs seed by seed: keeping the seeds it finished puts every point on the same seeds.

    Raises:
        ConfigError: a requested seed has no rows (a board labelled with seeds it lacks would mislead).
    """
    wanted = parse_seeds(seeds)
    found = tidy["seed"].astype(int)
    absent = sorted(set(wanted) - set(found))
    if absent:
        have = ", ".join(str(s) for s in sorted(found.unique()))
        raise ConfigError(
            f"no results for seed(s) {', '.join(map(str, absent))}: the runs have seed(s) {have}"
        )
    return tidy[found.isin(wanted)].reset_index(drop=True)


def _config_id(run_dir: Path, frame: pd.DataFrame) -> str:
    """Short hash of the run's resolved config without its seed, and of its data's identity.

    The identity is ``data_id``: a file's SHA-256, or the recipe of generated data (whose bytes differ
    between kinds of machine in the floats' last bits). Rows written before that column give the SHA-256.
    """
    data = _data_identity(frame)
    path = run_dir / "config.yaml"
    if not path.exists():
        return hashlib.sha256(data.encode()).hexdigest()[:8]
    cfg = OmegaConf.load(path)
    if "seed" in cfg:
        cfg.seed = None
    return hashlib.sha256(f"{config_hash(cfg)}|{data}".encode()).hexdigest()[:8]  # type: ignore[arg-type]


def _data_identity(frame: pd.DataFrame) -> str:
    """The run's ``data_id``, or its ``data_sha256`` where the rows predate that column."""
    for column in ("data_id", "data_sha256"):
        if column in frame:
            known = frame[column].dropna()
            if len(known):
                return str(known.iloc[0])
    return ""
