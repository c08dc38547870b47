"""The leaderboard: seed means and stds per setting, the field's summaries, paired comparisons.

Input is the tidy store (one row per run x setting x metric, :mod:`msabench.results`); every aggregate is
derived from those rows and never stored in their place (``spec/data-and-metrics.md`` §7.3). Definitions
follow ``spec/protocols.md`` §8:

- per point (rate or condition): mean over seeds, population std (``ddof = 0``, as MMSA) and ``n`` seeds;
- ``mean_r``: the plain mean over the rates of the seed means (LNLN; §8.2);
- ``auilc``: the trapezoid area under the seed-mean curve over the rates run (TFR-Net/EMT-DLFR; §8.3), with
  ``auilc_norm`` = auilc / span and ``auilc_no1`` without r = 1.0; an undefined value (Corr of constant
  predictions) counts as 0 there and sets ``nan_as_zero``;
- ``rr_raw`` and ``er_raw``: MultiBench's relative and effective robustness over the points 0.0-0.9 (§8.4),
  lower-is-better metrics negated first; ER shifts the reference curve to the method's clean score;
- ``avg6`` / ``avg7``: the mean over the six missing availability conditions, without / with the complete one
  (MMIN, CorrKD / SemMSA; §4.3).

Every summary is linear in the per-seed values, so it is computed per seed and then averaged: the mean equals
the summary of the seed means, and the same per-seed values give the std and the paired comparison with the
reference (the runs share training seeds and test masks, so differences are taken seed by seed; the 95 %
interval uses Student's t with n - 1 degrees of freedom and the sample std, ``ddof = 1``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from msabench import results as store
from msabench.errors import ConfigError

STD_DDOF: Final[int] = 0
CONFIDENCE: Final[float] = 0.95
ENTRY_KEYS: Final[tuple[str, ...]] = ("dataset", "method", "train_policy", "config_id")
POINT_KEYS: Final[tuple[str, ...]] = (*ENTRY_KEYS, "protocol", "rate", "condition", "setting", "mask_seed")
SIX_CONDITIONS: Final[tuple[str, ...]] = ("t", "a", "v", "ta", "tv", "av")
CONDITION_ORDER: Final[tuple[str, ...]] = (*SIX_CONDITIONS, "tav")
MULTIBENCH_MAX_RATE: Final[float] = 0.9
REFERENCE_COLUMNS: Final[tuple[str, ...]] = (
    "dataset",
    "train_policy",
    "ref_method",
    "ref_policy",
    "ref_config",
)
_PROTOCOL_ORDER: Final[dict[str, int]] = {"intra": 0, "inter": 1}
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
PAIRED_SUMMARIES: Final[tuple[str, ...]] = ("mean_r", "auilc", "avg6", "avg7")
RATE_SUMMARIES: Final[tuple[str, ...]] = ("mean_r", "auilc", "auilc_norm", "auilc_no1", "rr_raw", "er_raw")
CONDITION_SUMMARIES: Final[tuple[str, ...]] = ("avg6", "avg7")
# The metric columns of each family in display order (spec data-and-metrics.md §7.1); kept here rather than
# imported from msabench.metrics so that building a leaderboard never imports torch.
METRIC_ORDER: Final[dict[str, tuple[str, ...]]] = {
    "mosi": ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr"),
    "sims": ("acc2", "acc3", "acc5", "f1", "mae", "corr"),
    "iemocap": ("wa", "ua", "f1_macro"),
}
LOWER_IS_BETTER: Final[frozenset[str]] = frozenset({"mae", "loss"})
RAW_UNITS: Final[frozenset[str]] = frozenset({"mae", "corr", "loss"})
_EPS: Final[float] = 1e-9
# Two-sided 95 % quantiles t_{0.975, df} for df = 1..30 (standard tables), used to check :func:`t_quantile`.
T975_TABLE: Final[tuple[float, ...]] = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def higher_is_better(metric: str) -> bool:
    """Direction of a metric column: every column is higher-is-better except MAE (and a loss)."""
    return metric not in LOWER_IS_BETTER


def is_percent(metric: str) -> bool:
    """Whether a metric is shown in percent (accuracies, F1) rather than raw (MAE, Corr)."""
    return metric not in RAW_UNITS


def metric_order(metrics: Iterable[str]) -> list[str]:
    """Metrics in the field's column order (the families' canonical orders, then any others sorted)."""
    present = set(metrics)
    canonical = list(dict.fromkeys(m for names in METRIC_ORDER.values() for m in names))
    return [m for m in canonical if m in present] + sorted(present - set(canonical))


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t distribution with integer ``df``, e.g. 4.303 for ``p = 0.975, df = 2``.

    Uses the closed form of P(|T| <= t) for integer degrees of freedom (Abramowitz & Stegun 26.7.3-26.7.4) and
    bisection, so no scipy is needed.

    Raises:
        ValueError: ``df`` below 1 or ``p`` outside (0.5, 1).
    """
    if df < 1 or not 0.5 < p < 1.0:
        raise ValueError(f"t_quantile needs df >= 1 and 0.5 < p < 1, got df={df}, p={p}")
    target = 2.0 * p - 1.0
    low, high = 0.0, 1.0
    while _t_central_probability(high, df) < target:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if _t_central_probability(mid, df) < target:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


def _t_central_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df (finite trigonometric series)."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    total, term = 1.0, 1.0
    if df % 2 == 0:  # sin(theta) * (1 + 1/2 c^2 + 1*3/(2*4) c^4 + ... ), df/2 terms
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            total += term
        return s * total
    if df == 1:
        return 2.0 * theta / math.pi
    for k in range(1, (df - 1) // 2):  # 2/pi (theta + sin cos (1 + 2/3 c^2 + 2*4/(3*5) c^4 + ...))
        term *= (2 * k) / (2 * k + 1) * c2
        total += term
    return 2.0 / math.pi * (theta + s * math.sqrt(c2) * total)


def paired_interval(differences: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Mean of paired differences and its two-sided 95 % t interval (NaN bounds below two pairs)."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(0.5 + CONFIDENCE / 2, d.size - 1) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class Reference:
    """The reference of paired comparisons and effective robustness (``lf_dnn`` or ``lf_dnn:matched``)."""

    method: str
    policy: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """``METHOD`` or ``METHOD:POLICY``; the method name in any case, ``-`` or ``_``."""
        method, _, policy = text.strip().partition(":")
        if not method:
            raise ConfigError("--reference needs a method name, e.g. --reference lf_dnn or lf_dnn:matched")
        return cls(method.lower().replace("-", "_"), policy.strip().lower() or None)

    @property
    def label(self) -> str:
        """How the reference is named in tables."""
        return f"{self.method}:{self.policy}" if self.policy else self.method


@dataclass
class Leaderboard:
    """Everything derived from the per-seed rows.

    Attributes:
        seeds: the per-seed rows aggregated (finished runs only), with ``config_id``.
        points: long: one row per (entry, point, metric) with ``mean``, ``std``, ``n``, ``n_finite`` and the
            paired comparison with the reference (``diff_mean``, ``diff_lo``, ``diff_hi``, ``n_pairs``,
            ``significant``, ``better``).
        wide: one row per (entry, point), ``<metric>_mean`` / ``<metric>_std`` columns and ``n``.
        summaries: long: one row per (entry, protocol, summary, metric) with ``value``, ``std``, ``n``,
        ``grid``,
            ``nan_as_zero`` and the paired comparison.
        failed: one row per failed run (``run_key``, ``dataset``, ``method``, ``train_policy``, ``seed``,
            ``error``).
        reference: the reference method, if any.
        references: per (dataset, train_policy) of the entries, the reference entry (``ref_method``,
            ``ref_policy``, ``ref_config``) they are compared with.
    """

    seeds: pd.DataFrame
    points: pd.DataFrame
    wide: pd.DataFrame
    summaries: pd.DataFrame
    failed: pd.DataFrame
    reference: Reference | None
    references: pd.DataFrame


# ---------------------------------------------------------------------------------------------------- loading
def load(roots: Path | Sequence[Path]) -> pd.DataFrame:
    """Every tidy row written under ``roots`` (runs and sweeps alike), with ``config_id`` and ``run_dir``.

    Runs archived by ``--rerun`` (``*.replaced-*``) are left out. ``config_id`` identifies the configuration
    apart from the training seed (and the data file), so that runs made with different configs are never
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
    from msabench.sweep import parse_seeds

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
    """Short hash of the run's resolved config without its seed, and of the data file."""
    import hashlib

    from omegaconf import OmegaConf

    from msabench.config import config_hash

    sha = str(frame["data_sha256"].iloc[0]) if len(frame) else ""
    path = run_dir / "config.yaml"
    if not path.exists():
        return hashlib.sha256(sha.encode()).hexdigest()[:8]
    cfg = OmegaConf.load(path)
    if "seed" in cfg:
        cfg.seed = None
    return hashlib.sha256(f"{config_hash(cfg)}|{sha}".encode()).hexdigest()[:8]  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------- building
def build(tidy: pd.DataFrame, reference: str | Reference | None = "lf_dnn") -> Leaderboard:
    """Aggregate tidy rows into the leaderboard.

    Args:
        tidy: rows with the columns of :data:`msabench.results.RESULT_COLUMNS` (``config_id`` optional).
        reference: the method compared against (paired differences, ``er_raw``); None for no comparison. A
            reference absent from a dataset only leaves that dataset without comparisons.

    Raises:
        ConfigError: two finished runs give the same seed of the same point (mixed result directories), or the
            reference is ambiguous (several policies or configs: name one as ``METHOD:POLICY``).
    """
    ref = Reference.parse(reference) if isinstance(reference, str) else reference
    tidy = tidy.copy()
    if "config_id" not in tidy.columns:
        tidy["config_id"] = ""
    tidy["config_id"] = tidy["config_id"].fillna("").astype(str)
    tidy = _separate_text_views(tidy)
    failed = _failed_runs(tidy)
    seeds = _per_seed(tidy)
    references = _reference_map(seeds, ref)
    points = _points(seeds, references)
    summaries = _summaries(seeds, references)
    return Leaderboard(seeds, points, _wide(points), summaries, failed, ref, references)


def _separate_text_views(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows that read stored (leaky) contextual text form a dataset of their own, never pooled or compared.

    A run's text view is ``reencoded``, ``stored`` or ``noncontextual``; one dataset's contextuality is fixed,
    so only ``stored`` can meet ``reencoded`` there. Rows written before text views were recorded keep their
    dataset (their data files, and so their config ids, differ anyway).
    """
    if "text_view" not in tidy.columns:
        tidy["text_view"] = None
    stored = tidy["text_view"].astype("object").eq("stored")
    tidy.loc[stored, "dataset"] = tidy.loc[stored, "dataset"].astype(str) + " (stored text)"
    return tidy


def _failed_runs(tidy: pd.DataFrame) -> pd.DataFrame:
    columns = ["run_key", "dataset", "method", "train_policy", "seed", "error"]
    bad = tidy[tidy["status"] != "finished"]
    return bad.drop_duplicates("run_key")[columns].reset_index(drop=True)


def _per_seed(tidy: pd.DataFrame) -> pd.DataFrame:
    rows = tidy[(tidy["status"] == "finished") & tidy["metric"].notna()].copy()
    rows["condition"] = rows["condition"].astype("object").where(rows["condition"].notna(), None)
    rows["rate"] = rows["rate"].astype(float)
    rows["value"] = rows["value"].astype(float)
    rows["seed"] = rows["seed"].astype(int)
    rows["mask_seed"] = rows["mask_seed"].astype(int)
    key = [*ENTRY_KEYS, "setting", "mask_seed", "seed", "metric"]
    duplicated = rows.duplicated(key, keep=False)
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        same = (rows[key] == first[key]).all(axis=1)
        where = sorted(set(rows.loc[same, "run_key"].astype(str)))
        raise ConfigError(
            f"several finished runs give seed {first['seed']} of {first['method']} ({first['train_policy']}) "
            f"on {first['dataset']} {first['setting']} (run keys {', '.join(where)}): point --results at one "
            "sweep's directory, or remove the runs you do not want counted"
        )
    return rows.reset_index(drop=True)


def _reference_map(seeds: pd.DataFrame, ref: Reference | None) -> pd.DataFrame:
    """For each (dataset, training policy) of the entries, the reference entry they are compared with.

    The reference method trained under the same policy when it was (the same protocol, grid and seeds, as
    MultiBench's effective robustness asks), else its only policy on that dataset; ``METHOD:POLICY`` fixes it.
    Entries with no such reference get no comparison.
    """
    if ref is None:
        return pd.DataFrame(columns=list(REFERENCE_COLUMNS))
    refs = seeds[seeds["method"] == ref.method]
    if ref.policy is not None:
        refs = refs[refs["train_policy"] == ref.policy]
    rows = []
    for dataset, group in seeds.groupby("dataset", sort=False):
        configs = refs[refs["dataset"] == dataset].groupby("train_policy")["config_id"].unique()
        for policy, ids in configs.items():
            if len(ids) > 1:
                raise ConfigError(
                    f"the reference {ref.method} ({policy}) has runs with {len(ids)} different configs on "
                    f"{dataset} (config ids {', '.join(sorted(ids))}): point --results at one sweep's "
                    "directory"
                )
        for policy in sorted(set(group["train_policy"])):
            if policy in configs.index:
                chosen = policy
            elif len(configs) == 1:
                chosen = configs.index[0]
            else:
                continue
            rows.append((dataset, policy, ref.method, chosen, configs[chosen][0]))
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def _is_reference(frame: pd.DataFrame, references: pd.DataFrame) -> pd.Series:
    """Mask of the rows that belong to an entry some entry is compared with."""
    if references.empty or frame.empty:
        return pd.Series(False, index=frame.index)
    keys = references[["dataset", "ref_method", "ref_policy", "ref_config"]].drop_duplicates()
    keys = keys.set_axis(list(ENTRY_KEYS), axis=1).assign(_hit=True)
    hits = frame[list(ENTRY_KEYS)].merge(keys, on=list(ENTRY_KEYS), how="left")["_hit"]
    return pd.Series(hits.notna().to_numpy(), index=frame.index)


def _with_reference(frame: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """The rows of entries that have a reference other than themselves, with its ``ref_*`` columns."""
    rows = frame.merge(references, on=["dataset", "train_policy"], how="inner")
    own = (
        (rows["method"] == rows["ref_method"])
        & (rows["train_policy"] == rows["ref_policy"])
        & (rows["config_id"] == rows["ref_config"])
    )
    return rows[~own]


def _reference_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with its entry columns renamed ``ref_*``, to join with :func:`_with_reference`."""
    renamed = frame.rename(
        columns={"method": "ref_method", "train_policy": "ref_policy", "config_id": "ref_config"}
    )
    return renamed[["dataset", "ref_method", "ref_policy", "ref_config", *columns]]


def _points(seeds: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    keys = [*POINT_KEYS, "metric"]
    grouped = seeds.groupby(keys, dropna=False, sort=False)["value"]
    points = grouped.agg(
        mean=lambda v: v.mean(skipna=False),
        std=lambda v: v.std(ddof=STD_DDOF, skipna=False),
        n="size",
        n_finite="count",
    ).reset_index()
    points["std_ddof"] = STD_DDOF
    points["metric_family"] = points["dataset"].map(seeds.groupby("dataset")["metric_family"].first())
    paired = _paired(seeds, references, ["setting", "mask_seed", "metric"])
    points = points.merge(paired, on=[*ENTRY_KEYS, "setting", "mask_seed", "metric"], how="left")
    return _sort_points(points)


def _paired(frame: pd.DataFrame, references: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per entry and key: the mean over shared seeds of (entry - reference) and its 95 % t interval."""
    columns = [*ENTRY_KEYS, *keys, "diff_mean", "diff_lo", "diff_hi", "n_pairs", "significant", "better"]
    if references.empty:
        return pd.DataFrame(columns=columns)
    ref = _reference_rows(frame, [*keys, "seed", "value"]).rename(columns={"value": "ref_value"})
    on = ["dataset", "ref_method", "ref_policy", "ref_config", *keys, "seed"]
    pairs = _with_reference(frame, references).merge(ref, on=on, how="inner")
    pairs["difference"] = pairs["value"] - pairs["ref_value"]
    rows = []
    for group_key, group in pairs.groupby([*ENTRY_KEYS, *keys], dropna=False, sort=False):
        mean, lo, hi = paired_interval(group["difference"].to_numpy())
        metric = group["metric"].iloc[0]
        significant = bool(lo > 0 or hi < 0) if not math.isnan(lo) else False
        better = (mean > 0) == higher_is_better(metric) if significant else None
        rows.append((*group_key, mean, lo, hi, len(group), significant, better))
    return pd.DataFrame(rows, columns=columns)


def _sort_points(points: pd.DataFrame) -> pd.DataFrame:
    order = {c: i for i, c in enumerate(CONDITION_ORDER)}
    points = points.assign(
        _protocol=points["condition"].notna().astype(int)
        + points["protocol"].map({"intra": 0, "inter": 1}).fillna(2),
        _condition=points["condition"].map(order),
    )
    points = points.sort_values(
        ["dataset", "_protocol", "rate", "_condition", "method", "train_policy", "config_id"], kind="stable"
    )
    return points.drop(columns=["_protocol", "_condition"]).reset_index(drop=True)


def _wide(points: pd.DataFrame) -> pd.DataFrame:
    base = list(POINT_KEYS)
    if points.empty:
        return pd.DataFrame(columns=[*base, "n", "std_ddof"])
    frame = points.assign(_row=points.groupby(base, dropna=False, sort=False).ngroup())
    out = frame.drop_duplicates("_row").set_index("_row")[base]
    out = out.assign(n=frame.groupby("_row")["n"].max(), std_ddof=STD_DDOF)
    for metric in metric_order(points["metric"].unique()):
        sub = frame[frame["metric"] == metric].set_index("_row")
        out[f"{metric}_mean"] = sub["mean"]
        out[f"{metric}_std"] = sub["std"]
    return out.reset_index(drop=True)


# -------------------------------------------------------------------------------------------------- summaries
def _summaries(seeds: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    per_seed = pd.concat(
        [_rate_summaries(seeds), _condition_summaries(seeds), _effective_robustness(seeds, references)],
        ignore_index=True,
    )
    columns = [
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
    ]
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
    paired = _paired(comparable, references, ["protocol", "mask_seed", "summary", "metric", "grid"])
    agg = agg.merge(paired, on=keys, how="left")
    order = {s: i for i, s in enumerate((*RATE_SUMMARIES, *CONDITION_SUMMARIES))}
    agg = agg.assign(_s=agg["summary"].map(order), _p=agg["protocol"].map(_PROTOCOL_ORDER).fillna(9))
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
        return float(CONDITION_ORDER.index(value)) if value in CONDITION_ORDER else 99.0
    return float(value)  # type: ignore[arg-type]


def _rate_summaries(seeds: pd.DataFrame) -> pd.DataFrame:
    rated = seeds[seeds["rate"].notna() & seeds["protocol"].isin(["intra", "inter"])]
    rows = []
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
    rows = []
    for key, group in cond.groupby([*ENTRY_KEYS, "protocol", "mask_seed", "metric"], sort=False):
        metric = key[-1]
        present = set(group["condition"])
        for summary, needed in (("avg6", SIX_CONDITIONS), ("avg7", CONDITION_ORDER)):
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
    rated = seeds[in_range & seeds["protocol"].isin(["intra", "inter"])]
    ref = _reference_rows(rated, ["protocol", "mask_seed", "metric", "seed", "rate", "value"])
    rows = []
    entries = _with_reference(rated, references)
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


# ---------------------------------------------------------------------------------------------------- output
def write(
    board: Leaderboard,
    out: Path,
    fmt: str = "csv",
    plots_dir: Path | None = None,
    source: str = "",
) -> list[Path]:
    """Write the leaderboard files; returns their paths.

    ``out`` (``.csv``) gets the wide table; beside it ``<stem>.long.csv`` (per point and metric, with the
    paired comparison) and ``<stem>.summary.csv`` (the summaries). ``fmt="md"`` also writes ``<stem>.md``. All
    CSVs hold full precision, accuracies and F1 as fractions; only the Markdown rounds and scales.
    """
    if fmt not in ("csv", "md"):
        raise ConfigError(f"unknown leaderboard format '{fmt}': use csv or md")
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".csv", ".md") else out
    paths = {
        "wide": stem.with_name(stem.name + ".csv"),
        "long": stem.with_name(stem.name + ".long.csv"),
        "summary": stem.with_name(stem.name + ".summary.csv"),
    }
    store.atomic_write_text(paths["wide"], board.wide.to_csv(index=False, float_format="%.17g"))
    store.atomic_write_text(paths["long"], board.points.to_csv(index=False, float_format="%.17g"))
    store.atomic_write_text(paths["summary"], board.summaries.to_csv(index=False, float_format="%.17g"))
    written = list(paths.values())
    if plots_dir is not None:
        from msabench import plots

        written += plots.write_all(board, Path(plots_dir))
    if fmt == "md":
        md = stem.with_name(stem.name + ".md")
        store.atomic_write_text(md, to_markdown(board, source=source, plots_dir=plots_dir, base=md.parent))
        written.append(md)
    return written


def _fmt(value: float, metric: str, scale_percent: bool = True, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    percent = is_percent(metric) and scale_percent
    shown = 100.0 * value if percent else value
    text = (
        f"{shown:+.2f}"
        if percent and signed
        else f"{shown:.2f}"
        if percent
        else f"{shown:+.3f}"
        if signed
        else f"{shown:.3f}"
    )
    return text.replace("-", "−")


def _grid_text(grid: str) -> str:
    values = [float(v) for v in grid.split(",")]
    steps = np.diff(values)
    if len(values) > 3 and np.allclose(steps, steps[0]):
        return f"{values[0]:g}–{values[-1]:g} step {steps[0]:g} ({len(values)} points)"
    return ", ".join(f"{v:g}" for v in values)


def _entry_labels(frame: pd.DataFrame, board: Leaderboard) -> pd.Series:
    """``method`` (plus ``[config]`` where one method/policy has several configs; ``(reference)`` marked)."""
    many = frame.groupby(["dataset", "method", "train_policy"])["config_id"].transform("nunique") > 1
    labels = frame["method"].where(~many, frame["method"] + " [" + frame["config_id"] + "]")
    if not board.references.empty:
        is_ref = _is_reference(frame, board.references)
        labels = labels.where(~is_ref, labels + " (reference)")
    return labels


def _table(
    rows: pd.DataFrame,
    metrics: list[str],
    lead: list[str],
    value: str,
    std: str | None,
    board: Leaderboard,
    percent: bool = True,
    bold: bool = True,
) -> list[str]:
    """Markdown table, one line per entry (``rows``: one row per entry x metric); best per column bold."""
    rows = rows.assign(_label=_entry_labels(rows, board))
    index = [*lead, "_label", "train_policy", "n"]
    entries = rows.drop_duplicates([*lead, "_label", "train_policy"])[index]
    header = [
        *lead,
        "method",
        "policy",
        "n",
        *[f"{m} (%)" if is_percent(m) and percent else m for m in metrics],
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    cells: dict[tuple, dict[str, str]] = {}
    best: dict[tuple, dict[str, str]] = {}
    group_keys = lead or ["_all"]
    frame = rows.assign(_all=0)
    for metric in metrics:
        sub = frame[frame["metric"] == metric]
        for _, r in sub.iterrows():
            key = (*[r[c] for c in lead], r["_label"], r["train_policy"])
            text = _fmt(r[value], metric, percent)
            if std is not None and r["n"] > 1 and not math.isnan(r[std]):
                text += " ± " + _fmt(r[std], metric, percent)
            mark = _mark(r)
            cells.setdefault(key, {})[metric] = (text, _fmt(r[value], metric, percent), mark)
        if bold:
            for gkey, group in sub.groupby(group_keys, dropna=False, sort=False):
                shown = [(_fmt(v, metric, percent).replace("−", "-")) for v in group[value]]
                numbers = [float(s) for s in shown if s != "—"]
                if len(numbers) < 2:
                    continue
                target = max(numbers) if higher_is_better(metric) else min(numbers)
                best.setdefault(gkey if isinstance(gkey, tuple) else (gkey,), {})[metric] = (
                    f"{target:.{2 if is_percent(metric) and percent else 3}f}".replace("-", "−")
                )
    for _, e in entries.iterrows():
        key = (*[e[c] for c in lead], e["_label"], e["train_policy"])
        gkey = tuple(e[c] for c in lead) if lead else (0,)
        out = [*[_lead_text(e[c]) for c in lead], str(e["_label"]), str(e["train_policy"]), str(int(e["n"]))]
        for metric in metrics:
            text, shown, mark = cells.get(key, {}).get(metric, ("—", "—", ""))
            if best.get(gkey, {}).get(metric) == shown:
                text = f"**{text}**"
            out.append(text + mark)
        lines.append("| " + " | ".join(out) + " |")
    return lines


def _lead_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _mark(row: pd.Series) -> str:
    if "significant" not in row or not isinstance(row.get("significant"), bool | np.bool_):
        return ""
    if not row["significant"]:
        return ""
    return " ↑" if row["better"] else " ↓"


TEXT_VIEW_NOTES: Final[dict[str, str]] = {
    "reencoded": "re-encoded: where tokens were dropped, the text was recomputed from the damaged sentence "
    "by the encoder the features came from",
    "stored": "**stored**: the stored contextual features with dropped tokens zeroed; kept tokens still "
    "encode the dropped words, so text drops leak",
    "noncontextual": "token-wise features: a dropped token leaves nothing behind",
}


def _text_view_line(seeds: pd.DataFrame, dataset: str) -> str:
    views = sorted(set(seeds.loc[seeds["dataset"] == dataset, "text_view"].dropna().astype(str)))
    if not views:
        return "Text view: not recorded (runs made before msabench recorded it)."
    return "Text view: " + "; ".join(TEXT_VIEW_NOTES.get(v, v) for v in views) + "."


def to_markdown(
    board: Leaderboard, source: str = "", plots_dir: Path | None = None, base: Path | None = None
) -> str:
    """Markdown tables for a README or paper: per dataset and protocol, summaries then per-point tables."""
    lines = ["# msabench leaderboard", ""]
    seeds = board.seeds
    n_runs = seeds["run_key"].nunique() if "run_key" in seeds else 0
    intro = f"{n_runs} finished runs" + (f" under `{source}`" if source else "")
    if len(board.failed):
        intro += f"; {len(board.failed)} failed (listed at the end)"
    lines.append(intro + ".")
    if board.reference is not None:
        lines.append(
            "Reference for the paired comparisons (↑/↓) and effective robustness: "
            f"`{board.reference.label}`, trained under the same policy as the method compared where it was, "
            "else under its only policy."
        )
    lines.append("")
    for dataset, ds_points in board.points.groupby("dataset", sort=False):
        metrics = metric_order(ds_points["metric"].unique())
        lines += [f"## {dataset}", "", _text_view_line(seeds, str(dataset)), ""]
        if board.reference is not None and dataset not in set(board.references["dataset"]):
            lines += [f"No `{board.reference.method}` runs on {dataset}: no paired comparison here.", ""]
        ds_summaries = board.summaries[board.summaries["dataset"] == dataset]
        rated = ds_points[ds_points["rate"].notna()]
        for protocol in [p for p in ("intra", "inter") if p in set(rated["protocol"])]:
            lines += _rate_section(
                board,
                dataset,
                protocol,
                rated[rated["protocol"] == protocol],
                ds_summaries,
                metrics,
                plots_dir,
                base,
            )
        cond = ds_points[ds_points["condition"].notna()]
        if len(cond):
            lines += _condition_section(board, dataset, cond, ds_summaries, metrics, plots_dir, base)
        lines += _paired_section(board, ds_summaries, metrics)
    lines += _footnotes(board)
    return "\n".join(lines).rstrip() + "\n"


_SUMMARY_TITLES: Final[dict[str, str]] = {
    "mean_r": "Mean over rates (LNLN)",
    "auilc": "AUILC (TFR-Net / EMT-DLFR)",
    "avg6": "Avg over the six missing conditions (MMIN / CorrKD)",
    "avg7": "Avg over the seven conditions, complete included (SemMSA)",
}


def _rate_section(board, dataset, protocol, points, summaries, metrics, plots_dir, base) -> list[str]:  # noqa: ANN001
    name = "intra-modal rate r" if protocol == "intra" else "sample-level missing rate MR"
    lines = [f"### {dataset} · {protocol} ({name})", ""]
    sums = summaries[summaries["protocol"] == protocol]
    for summary in ("mean_r", "auilc"):
        part = sums[sums["summary"] == summary]
        if part.empty:
            continue
        grids = sorted(set(part["grid"]), key=len, reverse=True)
        what = {
            "mean_r": "plain mean of the per-rate values",
            "auilc": "trapezoid area under the metric-vs-rate curve, not normalised by the span "
            "(accuracies and F1 on the percentage scale)",
        }[summary]
        lines += [f"**{_SUMMARY_TITLES[summary]}**: {what}; rates {_grid_text(grids[0])}.", ""]
        if len(grids) > 1:
            lines += [
                "Some entries were run on other rates (their grids are in the summary CSV): compare "
                "within one grid only.",
                "",
            ]
        lines += _table(part, metrics, [], "value", "std", board) + [""]
    rr = sums[sums["summary"] == "rr_raw"]
    if len(rr):
        lines += _robustness_table(board, sums, metrics)
    lines += ["**Per rate** (mean ± std over seeds)", ""]
    lines += _table(points, metrics, ["rate"], "mean", "std", board) + [""]
    if plots_dir is not None:
        lines += _plot_links(plots_dir, base, f"{_slug(dataset)}__{protocol}__", metrics)
    return lines


def _robustness_table(board: Leaderboard, sums: pd.DataFrame, metrics: list[str]) -> list[str]:
    rr = sums[sums["summary"] == "rr_raw"]
    er = sums[sums["summary"] == "er_raw"]
    ref = board.reference.label if board.reference else "the reference"
    lines = [
        f"**MultiBench robustness** (rates {_grid_text(rr['grid'].iloc[0])}): relative robustness `rr_raw` "
        f"(trapezoid area, MAE negated) / effective robustness `er_raw` against `{ref}` "
        "(sum of the drops from the clean score minus the reference's drops; positive = degrades less).",
        "",
    ]
    merged = rr.merge(
        er[[*ENTRY_KEYS, "metric", "value"]].rename(columns={"value": "er"}),
        on=[*ENTRY_KEYS, "metric"],
        how="left",
    )
    merged = merged.assign(
        shown=[
            f"{_fmt(a, m)} / {_fmt(b, m, signed=True)}"
            for a, b, m in zip(merged["value"], merged["er"], merged["metric"], strict=True)
        ]
    )
    labels = _entry_labels(merged, board)
    header = ["method", "policy", "n", *[f"{m} (%)" if is_percent(m) else m for m in metrics]]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for (label, policy), group in merged.assign(_label=labels).groupby(
        ["_label", "train_policy"], sort=False
    ):
        cells = dict(zip(group["metric"], group["shown"], strict=True))
        lines.append(
            "| "
            + " | ".join(
                [str(label), str(policy), str(int(group["n"].iloc[0])), *[cells.get(m, "—") for m in metrics]]
            )
            + " |"
        )
    return [*lines, ""]


def _condition_section(board, dataset, points, summaries, metrics, plots_dir, base) -> list[str]:  # noqa: ANN001
    lines = [f"### {dataset} · availability conditions (whole modalities missing)", ""]
    for summary in ("avg6", "avg7"):
        part = summaries[summaries["summary"] == summary]
        if part.empty:
            continue
        lines += [f"**{_SUMMARY_TITLES[summary]}**: conditions {part['grid'].iloc[0]}.", ""]
        lines += _table(part, metrics, [], "value", "std", board) + [""]
    lines += ["**Per condition** (available modalities; mean ± std over seeds)", ""]
    lines += _table(points, metrics, ["condition"], "mean", "std", board) + [""]
    if plots_dir is not None:
        lines += _plot_links(plots_dir, base, f"{_slug(dataset)}__conditions__", metrics)
    return lines


def _paired_section(board: Leaderboard, summaries: pd.DataFrame, metrics: list[str]) -> list[str]:
    part = summaries[
        summaries["n_pairs"].notna()
        & (summaries["n_pairs"] > 0)
        & summaries["summary"].isin(PAIRED_SUMMARIES)
    ]
    if part.empty or board.reference is None:
        return []
    lines = [
        f"**Paired difference with `{board.reference.label}`** (method − reference over shared seeds, mean "
        "[95 % t interval]; * where the interval excludes zero)",
        "",
    ]
    header = [
        "protocol",
        "summary",
        "method",
        "policy",
        "pairs",
        *[f"{m} (pp)" if is_percent(m) else m for m in metrics],
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    labels = _entry_labels(part, board)
    for key, group in part.assign(_label=labels).groupby(
        ["protocol", "summary", "_label", "train_policy"], sort=False
    ):
        cells = {}
        for _, r in group.iterrows():
            m = r["metric"]
            text = _fmt(r["diff_mean"], m, signed=True)
            if not math.isnan(r["diff_lo"]):
                text += f" [{_fmt(r['diff_lo'], m, signed=True)}, {_fmt(r['diff_hi'], m, signed=True)}]"
            cells[m] = text + ("*" if r["significant"] else "")
        lines.append(
            "| "
            + " | ".join(
                [*map(str, key), str(int(group["n_pairs"].max())), *[cells.get(m, "—") for m in metrics]]
            )
            + " |"
        )
    return [*lines, ""]


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def _plot_links(plots_dir: Path, base: Path | None, prefix: str, metrics: list[str]) -> list[str]:
    links = []
    for metric in metrics:
        path = Path(plots_dir) / f"{prefix}{metric}.png"
        if path.exists():
            rel = _relative(path, base)
            links.append(f"[{metric}]({rel})")
    return [f"Plots: {' · '.join(links)}", ""] if links else []


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return path.as_posix()
    import os

    return Path(os.path.relpath(path.resolve(), Path(base).resolve())).as_posix()


def _footnotes(board: Leaderboard) -> list[str]:
    seeds = board.seeds
    families = set(board.points["metric_family"].dropna()) if len(board.points) else set()
    notes = [
        "Units: accuracies and F1 in percent (×100; differences in percentage points, pp); MAE and Corr raw. "
        "Stored unrounded (CSV, fractions); rounded only here.",
        f"mean ± std: std is the population standard deviation over training seeds (ddof = {STD_DDOF}); "
        "n = number of seeds. Summaries are computed per seed and averaged, which equals the summary of the "
        "seed means.",
    ]
    if "mosi" in families:
        notes.append(
            "MOSI/MOSEI metrics (MMSA `MetricsTop`): Has0 = negative vs non-negative over all samples; "
            "Non0 = negative vs positive over samples with a non-zero label (a prediction of exactly 0 "
            "counts as negative); F1 is weighted by true-class support with arguments (y_true, y_pred); "
            "Acc-5/Acc-7 round half to even after clipping; MAE and Corr on unclipped predictions."
        )
    if "sims" in families:
        notes.append(
            "SIMS metrics: predictions and labels clipped to [−1, 1] first (MAE and Corr included); `acc2` = "
            "non-positive vs positive; F1 weighted, (y_true, y_pred)."
        )
    if "iemocap" in families:
        notes.append(
            "IEMOCAP: `wa` = overall accuracy, `ua` = unweighted (macro) recall, `f1_macro` = macro F1."
        )
    selection = sorted(set(seeds["selection"].dropna().astype(str))) if "selection" in seeds else []
    notes.append(
        "Checkpoint selection: on validation only, one checkpoint per run for all metrics; the test split is "
        "never used for selection"
        + (f" (rules used: {', '.join(f'`{s}`' for s in selection)})." if selection else ".")
    )
    masks = sorted(set(seeds["mask_seed"].astype(int))) if len(seeds) else []
    trains = sorted(set(seeds["seed"].astype(int))) if len(seeds) else []
    notes.append(
        f"Test masks are counter-based and nested across rates, mask seed(s) {', '.join(map(str, masks))}: "
        "every method sees the same missing entries at a given setting. Training seeds: "
        f"{', '.join(map(str, trains))}."
    )
    if board.reference is not None:
        notes.append(
            f"↑/↓: better/worse than `{board.reference.label}` by a paired comparison over shared seeds "
            "(same seeds, same masks): the 95 % Student-t interval (n − 1 df, sample std ddof = 1) of the "
            "per-seed difference excludes zero. Needs at least two seeds."
        )
    notes.append(
        "`rr_raw` is MultiBench's raw relative robustness, an absolute area that does not reference late "
        "fusion (MultiBench issue #31); `er_raw` is its raw effective robustness (a sum, not an integral); "
        "MultiBench's min-max normalisation against a pool is not applied."
    )
    if "nan_as_zero" in board.summaries and board.summaries["nan_as_zero"].fillna(False).astype(bool).any():
        notes.append(
            "An undefined value (Corr of constant predictions) counts as 0 in AUILC for the flagged "
            "entries (`nan_as_zero` in the summary CSV)."
        )
    lines = ["## Notes", ""] + [f"{i}. {note}" for i, note in enumerate(notes, 1)] + [""]
    if len(board.failed):
        lines += [
            "## Failed runs",
            "",
            "| dataset | method | policy | seed | error |",
            "|---|---|---|---|---|",
        ]
        for _, r in board.failed.iterrows():
            error = str(r["error"]).replace("|", "\\|").splitlines()[0] if isinstance(r["error"], str) else ""
            lines.append(f"| {r['dataset']} | {r['method']} | {r['train_policy']} | {r['seed']} | {error} |")
        lines.append("")
    return lines
