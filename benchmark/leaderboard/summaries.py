"""The field's summaries of a curve or a set of conditions, per training seed.

- ``mean_r``: the plain mean over the rates (LNLN);
- ``auilc``: the trapezoid area under the metric-vs-rate curve over the rates run (TFR-Net/EMT-DLFR), with
  ``auilc_norm`` = auilc / span and ``auilc_no1`` without r = 1.0; an undefined value (Corr of constant
  predictions) counts as 0 there and sets ``nan_as_zero``;
- ``rr_raw`` and ``er_raw``: MultiBench's relative and effective robustness over the points 0.0-0.9,
  lower-is-better metrics negated first; ER shifts the reference curve to the method's clean score;
- ``avg6`` / ``avg7``: the mean over the six missing availability conditions, without / with the complete one
  (MMIN, CorrKD / SemMSA).

Every summary is linear in the per-seed values, so it is computed per seed and then averaged: the mean equals
the summary of the seed means, and the same per-seed values give the std and the paired comparison with the
reference. Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from msabench.core.vocabulary import ALL_CONDITIONS, MISSING_CONDITIONS, RATE_PROTOCOLS, higher_is_better
from msabench.leaderboard.board import ENTRY_KEYS, PROTOCOL_ORDER, STD_DDOF
from msabench.leaderboard.reference import reference_rows, with_reference
from msabench.leaderboard.stats import paired

MULTIBENCH_MAX_RATE: Final[float] = 0.9
PAIRED_SUMMARIES: Final[tuple[str, ...]] = ("mean_r", "auilc", "avg6", "avg7")
RATE_SUMMARIES: Final[tuple[str, ...]] = ("mean_r", "auilc", "auilc_norm", "auilc_no1", "rr_raw", "er_raw")
CONDITION_SUMMARIES: Final[tuple[str, ...]] = ("avg6", "avg7")
# One row per (entry, protocol, mask seed, summary, metric, seed): what each summary function returns.
SUMMARY_SEED_COLUMNS: Final[tuple[str, ...]] = (
    *ENTRY_KEYS,
    "protocol",
    "mask_seed",
    "summary",
    "metric",
    "seed",
    "value",
    "grid",
    "nan_as_zero",
)
SUMMARY_COLUMNS: Final[tuple[str, ...]] = (
    *ENTRY_KEYS,
    "protocol",
    "mask_seed",
    "summary",
    "metric",
    "value",
    "std",
    "n",
    "std_ddof",
    "grid",
    "nan_as_zero",
    "diff_mean",
    "diff_lo",
    "diff_hi",
    "n_pairs",
    "significant",
    "better",
)
_EPS: Final[float] = 1e-9


def summaries(seeds: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """Every summary of every entry: mean and std over seeds, and the paired comparison with the reference."""
    per_seed = pd.concat(
        [_rate_summaries(seeds), _condition_summaries(seeds), _effective_robustness(seeds, references)],
        ignore_index=True,
    )
    columns = list(SUMMARY_COLUMNS)
    if per_seed.empty:
        return pd.DataFrame(columns=columns)
    keys = [*ENTRY_KEYS, "protocol", "mask_seed", "summary", "metric", "grid"]
    agg = (
        per_seed.groupby(keys, sort=False)
        .agg(
            value=("value", lambda v: v.mean(skipna=False)),
            std=("value", lambda v: v.std(ddof=STD_DDOF, skipna=False)),
            n=("value", "size"),
            nan_as_zero=("nan_as_zero", "any"),
        )
        .reset_index()
    )
    agg["std_ddof"] = STD_DDOF
    comparable = per_seed[per_seed["summary"] != "er_raw"]  # ER is already relative to the reference
    pairs = paired(comparable, references, ["protocol", "mask_seed", "summary", "metric", "grid"])
    agg = agg.merge(pairs, on=keys, how="left")
    order = {s: i for i, s in enumerate((*RATE_SUMMARIES, *CONDITION_SUMMARIES))}
    agg = agg.assign(_s=agg["summary"].map(order), _p=agg["protocol"].map(PROTOCOL_ORDER).fillna(9))
    agg = agg.sort_values(["dataset", "_p", "_s", "method", "train_policy", "config_id"], kind="stable")
    return agg.reset_index(drop=True)[columns]


def _trapezoid(values: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Trapezoid area of each row of ``values`` (seeds x rates) over ``rates``."""
    return ((values[:, 1:] + values[:, :-1]) / 2.0 * np.diff(rates)).sum(axis=1)


def _grid_label(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)


def _full_grid_seeds(group: pd.DataFrame, column: str) -> tuple[list, pd.DataFrame]:
    """The grid an entry was run on and the seed x point table of the seeds that have all of it.

    The grid is every point any seed has; summaries use only the complete seeds, so that every seed integrates
    the same points.
    """
    grid = sorted(group[column].unique(), key=_point_sort_key)
    table = group.pivot_table(index="seed", columns=column, values="value", aggfunc="first", dropna=False)
    counts = group.groupby("seed")[column].nunique()
    complete = counts.index[counts == len(grid)]
    return grid, table.loc[complete, grid]


def _point_sort_key(value: object) -> float:
    if isinstance(value, str):
        return float(ALL_CONDITIONS.index(value)) if value in ALL_CONDITIONS else 99.0
    return float(value)  # type: ignore[arg-type]


def _rate_summaries(seeds: pd.DataFrame) -> pd.DataFrame:
    rated = seeds[seeds["rate"].notna() & seeds["protocol"].isin(RATE_PROTOCOLS)]
    rows: list[tuple[Any, ...]] = []
    for key, group in rated.groupby([*ENTRY_KEYS, "protocol", "mask_seed", "metric"], sort=False):
        metric = key[-1]
        grid, table = _full_grid_seeds(group, "rate")
        if len(grid) < 2:
            continue
        rates = np.asarray(grid, dtype=np.float64)
        values = table.to_numpy(dtype=np.float64)
        nan = np.isnan(values)
        filled = np.where(nan, 0.0, values)
        span = rates[-1] - rates[0]
        auilc = _trapezoid(filled, rates)
        per_seed = {
            "mean_r": (values.mean(axis=1), grid, np.zeros(len(values), dtype=bool)),
            "auilc": (auilc, grid, nan.any(axis=1)),
            "auilc_norm": (auilc / span, grid, nan.any(axis=1)),
        }
        if rates[-1] >= 1.0 - _EPS and len(rates) > 2:
            per_seed["auilc_no1"] = (
                _trapezoid(filled[:, :-1], rates[:-1]),
                grid[:-1],
                nan[:, :-1].any(axis=1),
            )
        inside = rates <= MULTIBENCH_MAX_RATE + _EPS
        if inside.sum() >= 2 and rates[0] <= _EPS:
            sign = 1.0 if higher_is_better(metric) else -1.0
            per_seed["rr_raw"] = (
                _trapezoid(sign * filled[:, inside], rates[inside]),
                [g for g, k in zip(grid, inside, strict=True) if k],
                nan[:, inside].any(axis=1),
            )
        for summary, (vals, used, flags) in per_seed.items():
            rows.extend(
                (*key[:-1], summary, metric, int(seed), float(v), _grid_label(used), bool(f))
                for seed, v, f in zip(table.index, vals, flags, strict=True)
            )
    return pd.DataFrame(rows, columns=list(SUMMARY_SEED_COLUMNS))


def _condition_summaries(seeds: pd.DataFrame) -> pd.DataFrame:
    cond = seeds[seeds["condition"].notna()]
    rows: list[tuple[Any, ...]] = []
    for key, group in cond.groupby([*ENTRY_KEYS, "protocol", "mask_seed", "metric"], sort=False):
        metric = key[-1]
        present = set(group["condition"])
        for summary, needed in (("avg6", MISSING_CONDITIONS), ("avg7", ALL_CONDITIONS)):
            if not set(needed) <= present:
                continue
            sub = group[group["condition"].isin(needed)]
            _, table = _full_grid_seeds(sub, "condition")
            values = table.to_numpy(dtype=np.float64).mean(axis=1)
            rows.extend(
                (*key[:-1], summary, metric, int(seed), float(v), ",".join(needed), False)
                for seed, v in zip(table.index, values, strict=True)
            )
    return pd.DataFrame(rows, columns=list(SUMMARY_SEED_COLUMNS))


def _effective_robustness(seeds: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """MultiBench ER per seed: sum_i [(f_i - f_0) - (LF_i - LF_0)] over the entry's points in 0.0-0.9.

    LF is the reference entry's run with the same seed; lower-is-better metrics are negated first.
    """
    columns = list(SUMMARY_SEED_COLUMNS)
    if references.empty:
        return pd.DataFrame(columns=columns)
    in_range = seeds["rate"].notna() & (seeds["rate"] <= MULTIBENCH_MAX_RATE + _EPS)
    rated = seeds[in_range & seeds["protocol"].isin(RATE_PROTOCOLS)]
    ref = reference_rows(rated, ["protocol", "mask_seed", "metric", "seed", "rate", "value"])
    rows: list[tuple[Any, ...]] = []
    entries = with_reference(rated, references)
    curve_keys = ["ref_method", "ref_policy", "ref_config"]
    for key, group in entries.groupby(
        [*ENTRY_KEYS, "protocol", "mask_seed", "metric", *curve_keys], sort=False
    ):
        dataset, protocol, mask_seed, metric = key[0], key[4], key[5], key[6]
        grid, table = _full_grid_seeds(group, "rate")
        if len(grid) < 2 or grid[0] > _EPS:
            continue
        lf = ref[
            (ref["dataset"] == dataset)
            & (ref[curve_keys] == pd.Series(dict(zip(curve_keys, key[7:], strict=True)))).all(axis=1)
            & (ref["protocol"] == protocol)
            & (ref["mask_seed"] == mask_seed)
            & (ref["metric"] == metric)
        ]
        lf_table = lf.pivot_table(index="seed", columns="rate", values="value", aggfunc="first", dropna=False)
        if not set(grid) <= set(lf_table.columns):
            continue
        lf_table = lf_table[grid].dropna(how="all")
        shared = table.index.intersection(lf_table.index)
        sign = 1.0 if higher_is_better(metric) else -1.0
        f = sign * table.loc[shared, grid].to_numpy(dtype=np.float64)
        g = sign * lf_table.loc[shared, grid].to_numpy(dtype=np.float64)
        er = ((f - f[:, :1]) - (g - g[:, :1])).sum(axis=1)
        rows.extend(
            (*key[:4], protocol, mask_seed, "er_raw", metric, int(seed), float(v), _grid_label(grid), False)
            for seed, v in zip(shared, er, strict=True)
        )
    return pd.DataFrame(rows, columns=columns)
