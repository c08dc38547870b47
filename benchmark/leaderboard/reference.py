"""Which entry each entry is compared with, and the joins that pair an entry's rows with its reference's."""

from __future__ import annotations

import pandas as pd

from msabench.errors import ConfigError
from msabench.leaderboard.board import ENTRY_KEYS, REFERENCE_COLUMNS, Reference


def reference_map(seeds: pd.DataFrame, ref: Reference | None) -> pd.DataFrame:
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


def is_reference(frame: pd.DataFrame, references: pd.DataFrame) -> pd.Series:
    """Mask of the rows that belong to an entry some entry is compared with."""
    if references.empty or frame.empty:
        return pd.Series(False, index=frame.index)
    keys = references[["dataset", "ref_method", "ref_policy", "ref_config"]].drop_duplicates()
    keys = keys.set_axis(list(ENTRY_KEYS), axis=1).assign(_hit=True)
    hits = frame[list(ENTRY_KEYS)].merge(keys, on=list(ENTRY_KEYS), how="left")["_hit"]
    return pd.Series(hits.notna().to_numpy(), index=frame.index)


def with_reference(frame: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """The rows of entries that have a reference other than themselves, with its ``ref_*`` columns."""
    rows = frame.merge(references, on=["dataset", "train_policy"], how="inner")
    own = (
        (rows["method"] == rows["ref_method"])
        & (rows["train_policy"] == rows["ref_policy"])
        & (rows["config_id"] == rows["ref_config"])
    )
    return rows[~own]


def reference_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with its entry columns renamed ``ref_*``, to join with :func:`with_reference`."""
    renamed = frame.rename(
        columns={"method": "ref_method", "train_policy": "ref_policy", "config_id": "ref_config"}
    )
    return renamed[["dataset", "ref_method", "ref_policy", "ref_config", *columns]]
