"""Paired statistics: an entry against its reference, seed by seed.

Runs of different methods share training seeds and test masks, so the difference is taken per seed and its
mean gets a two-sided 95 % interval from Student's t with n - 1 degrees of freedom and the sample std
(``ddof = 1``); definitions in ``docs/metrics.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd
from scipy import stats

from msabench.core.vocabulary import higher_is_better
from msabench.leaderboard.board import ENTRY_KEYS
from msabench.leaderboard.reference import reference_rows, with_reference

CONFIDENCE: Final[float] = 0.95


def paired_interval(differences: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Mean of paired differences and its two-sided 95 % t interval (NaN bounds below two pairs)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    quantile = float(stats.t.ppf(0.5 + CONFIDENCE / 2, d.size - 1))
    half = quantile * float(d.std(ddof=1)) / math.sqrt(d.size)
    return mean, mean - half, mean + half


def paired(frame: pd.DataFrame, references: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per entry and key: the mean over shared seeds of (entry - reference) and its 95 % t interval."""
    columns = [*ENTRY_KEYS, *keys, "diff_mean", "diff_lo", "diff_hi", "n_pairs", "significant", "better"]
    if references.empty:
        return pd.DataFrame(columns=columns)
    ref = reference_rows(frame, [*keys, "seed", "value"]).rename(columns={"value": "ref_value"})
    on = ["dataset", "ref_method", "ref_policy", "ref_config", *keys, "seed"]
    pairs = with_reference(frame, references).merge(ref, on=on, how="inner")
    pairs["difference"] = pairs["value"] - pairs["ref_value"]
    rows = []
    for group_key, group in pairs.groupby([*ENTRY_KEYS, *keys], dropna=False, sort=False):
        mean, lo, hi = paired_interval(group["difference"].to_numpy())
        metric = group["metric"].iloc[0]
        significant = bool(lo > 0 or hi < 0) if not math.isnan(lo) else False
        better = (mean > 0) == higher_is_better(metric) if significant else None
        rows.append((*group_key, mean, lo, hi, len(group), significant, better))
    return pd.DataFrame(rows, columns=columns)
