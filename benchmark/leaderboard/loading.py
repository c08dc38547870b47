"""Reading the results store into one tidy frame, and choosing the training seeds to aggregate."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from msabench import results as store
from msabench.config import config_hash
from msabench.core.parse import parse_seeds
from msabench.errors import ConfigError


def load(roots: Path | Sequence[Path]) -> pd.DataFrame:
    """Every tidy row written under ``roots`` (runs and sweeps alike), with ``config_id`` and ``run_dir``.

    Runs archived by ``--rerun`` (``*.replaced-*``) are left out. ``config_id`` identifies the configuration
    apart from the training seed (and the data), so that runs made with different configs are never
    averaged together as if they were seeds.
    """
    roots = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
    for root in roots:
        if not root.is_dir():
            raise ConfigError(
                f"results directory '{root}' does not exist: give the --output of your runs/sweeps"
            )
    frames = []
    for root in roots:
        for run_dir in store.find_run_dirs(root):
            if ".replaced-" in run_dir.name:
                continue
            frame = store.read_run(run_dir)
            frame["run_dir"] = str(run_dir)
            frame["config_id"] = _config_id(run_dir, frame)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*store.RESULT_COLUMNS, "run_dir", "config_id"])
    return pd.concat(frames, ignore_index=True)


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
