"""From tidy rows to the leaderboard: datasets kept apart by data identity, seeds checked, points aggregated.

Input is the tidy store (one row per run x setting x metric, :mod:`msabench.store`); every aggregate is
derived from those rows and never stored in their place. Per point (rate or condition): the mean over seeds,
the population std (``ddof = 0``, as MMSA) and ``n`` seeds, with the paired comparison against the reference.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from msabench.core.vocabulary import ALL_CONDITIONS, DEFAULT_DATA_VARIANT, metric_order
from msabench.errors import ConfigError
from msabench.leaderboard.board import (
    ENTRY_KEYS,
    POINT_KEYS,
    PROTOCOL_ORDER,
    STD_DDOF,
    Leaderboard,
    Reference,
)
from msabench.leaderboard.budgets import budgets
from msabench.leaderboard.reference import reference_map
from msabench.leaderboard.stats import paired
from msabench.leaderboard.summaries import summaries

FAILED_COLUMNS: Final[tuple[str, ...]] = ("run_key", "dataset", "method", "train_policy", "seed", "error")


def build(
    tidy: pd.DataFrame, reference: str | Reference | None = "lf_dnn", pool_across_code: bool = False
) -> Leaderboard:
    """Aggregate tidy rows into the leaderboard.

    Args:
        tidy: rows with the columns of :data:`msabench.store.RESULT_COLUMNS` (``config_id`` optional).
        reference: the method compared against (paired differences, ``er_raw``); None for no comparison. A
            reference absent from a dataset only leaves that dataset without comparisons.
        pool_across_code: pool an entry's runs although different code made them (their code versions,
            :func:`code_versions`, differ); the board lists such entries in ``pooled_code``.

    Raises:
        ConfigError: two finished runs give the same seed of the same point (mixed result directories), the
            reference is ambiguous (several policies or configs: name one as ``METHOD:POLICY``), or an entry's
            runs were made by different code and ``pool_across_code`` is not set.
    """
    ref = Reference.parse(reference) if isinstance(reference, str) else reference
    tidy = tidy.copy()
    if "config_id" not in tidy.columns:
        tidy["config_id"] = ""
    tidy["config_id"] = tidy["config_id"].fillna("").astype(str)
    tidy = separate_data_identities(tidy)
    failed = _failed_runs(tidy)
    seeds = _per_seed(tidy)
    pooled = _pooled_code(seeds, pool_across_code)
    references = reference_map(seeds, ref)
    points = _points(seeds, references)
    return Leaderboard(
        seeds,
        points,
        _wide(points),
        summaries(seeds, references),
        budgets(seeds),
        failed,
        ref,
        references,
        pooled,
    )


def code_versions(rows: pd.DataFrame) -> pd.Series:
    """The code version of each row: its ``code_fingerprint``, else ``git:<commit>`` (12 digits).

    Rows written before msabench recorded fingerprints have only the git commit their run was made at: it
    stands in, so runs of one commit pool and runs of two commits do not. A row with neither is
    ``unrecorded``.
    """
    code = rows["code_fingerprint"] if "code_fingerprint" in rows else pd.Series(pd.NA, index=rows.index)
    commit = rows["git_commit"] if "git_commit" in rows else pd.Series(pd.NA, index=rows.index)
    known_commit = commit.notna() & commit.astype("object").ne("unknown")
    stand_in = ("git:" + commit.astype("object").where(known_commit, "").astype(str).str[:12]).where(
        known_commit, "unrecorded"
    )
    return code.astype("object").where(code.notna(), stand_in).astype(str)


def _pooled_code(seeds: pd.DataFrame, pool: bool) -> pd.DataFrame:
    """The entries whose runs different code made (refused unless ``pool``), each version with its seeds.

    An entry's summaries and paired comparisons combine all its settings and seeds, so the check is per
    entry, not per cell: a ``matched`` entry with one setting retrained after a fix mixes code too.
    """
    frame = seeds.assign(_code=code_versions(seeds))
    rows = []
    for key, entry in frame.groupby(list(ENTRY_KEYS), sort=False):
        if entry["_code"].nunique() < 2:
            continue
        versions = "; ".join(
            f"{code} (seed{'s' if len(set(s)) > 1 else ''} {', '.join(str(x) for x in sorted(set(s)))})"
            for code, s in entry.groupby("_code", sort=True)["seed"]
        )
        dataset, method, policy, _ = key
        if not pool:
            raise ConfigError(
                f"{method} ({policy}) on {dataset}: its runs were made by different code ({versions}); run "
                "the stale ones again (run and sweep retrain them), or pass --pool-across-code to pool them "
                "(the Markdown then names the entry)"
            )
        rows.append(dict(zip(ENTRY_KEYS, key, strict=True)) | {"versions": versions})
    return pd.DataFrame(rows, columns=[*ENTRY_KEYS, "versions"])


def separate_data_identities(tidy: pd.DataFrame) -> pd.DataFrame:
    """Rows that saw different data form datasets of their own, never pooled or compared.

    A row's data identity is its text view (``reencoded``, ``intact``, ``stored`` or ``noncontextual``) and
    its data variant (``unaligned``, ``aligned``, ``unaligned+zscore``, ...). One dataset's contextuality is
    fixed, so among text views only ``stored`` (whose kept tokens still encode the dropped words) is set
    apart: ``intact`` (stored features of a run that dropped no token) holds nothing removed, as
    ``reencoded`` does, and pools with it. Rows that record no variant (written before msabench recorded it)
    count as the default, :data:`~msabench.core.vocabulary.DEFAULT_DATA_VARIANT`. The default identity keeps
    the dataset's name; any other is named after it, e.g. ``mosi (aligned+zscore)`` or ``mosi (stored text)``.
    """
    for column in ("text_view", "data_variant"):
        if column not in tidy.columns:
            tidy[column] = None
    variant = tidy["data_variant"].astype("object").where(tidy["data_variant"].notna(), DEFAULT_DATA_VARIANT)
    stored = tidy["text_view"].astype("object").eq("stored")
    other = variant.ne(DEFAULT_DATA_VARIANT)
    parts = pd.Series("", index=tidy.index, dtype="object")
    parts = parts.where(~other, variant.astype(str))
    parts = parts.where(~stored, parts.where(~other, parts + ", ") + "stored text")
    marked = stored | other
    tidy.loc[marked, "dataset"] = tidy.loc[marked, "dataset"].astype(str) + " (" + parts[marked] + ")"
    return tidy


def _failed_runs(tidy: pd.DataFrame) -> pd.DataFrame:
    bad = tidy[tidy["status"] != "finished"]
    return bad.drop_duplicates("run_key")[list(FAILED_COLUMNS)].reset_index(drop=True)


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
    pairs = paired(seeds, references, ["setting", "mask_seed", "metric"])
    points = points.merge(pairs, on=[*ENTRY_KEYS, "setting", "mask_seed", "metric"], how="left")
    return _sort_points(points)


def _sort_points(points: pd.DataFrame) -> pd.DataFrame:
    order = {c: i for i, c in enumerate(ALL_CONDITIONS)}
    points = points.assign(
        _protocol=points["condition"].notna().astype(int) + points["protocol"].map(PROTOCOL_ORDER).fillna(2),
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
