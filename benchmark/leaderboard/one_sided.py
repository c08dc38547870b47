"""Cells whose predictions fall on one side of zero: found from the stored metrics, marked in the Markdown.

A model that puts (nearly) every test sample on one side of zero scores the share of that side in binary
accuracy while its weighted F1 falls far below it (the class it never predicts scores an F1 of 0): at 47.8 %
negative labels, all-negative predictions give Acc-2 47.8 % and F1 30.9 %. The rows hold metrics only, so the
rule reads that gap: a seed's cell is **one-sided** when its binary F1 is at least :data:`F1_GAP` below its
binary accuracy (Has0 on MOSI/MOSEI, the one binary pair on SIMS). A cell is marked when any of its seeds is.
Definitions and the threshold's measurement: ``docs/metrics.md``.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from msabench.leaderboard.board import POINT_KEYS

# 8 pp: in the committed synthetic grid 578 of 675 seed cells are within 0.5 pp, the largest gap below this is
# 6.7 pp, and every one-class prediction is 14-17 pp (docs/metrics.md).
F1_GAP: Final[float] = 0.08
# Per metric family, the binary accuracy and its F1; the marks go on both columns.
BINARY_PAIRS: Final[dict[str, tuple[str, str]]] = {"mosi": ("acc2_has0", "f1_has0"), "sims": ("acc2", "f1")}
MARK: Final[str] = "◐"
# How a method's README declares the cause of its one-sided cells (msabench.models.readme_declaration).
README_LABEL: Final[str] = "One-sided cells"


def one_sided(seeds: pd.DataFrame) -> pd.DataFrame:
    """The one-sided cells: one row per point with the seeds that are one-sided there.

    Args:
        seeds: the leaderboard's per-seed rows.

    Returns:
        ``POINT_KEYS`` columns, ``seeds`` (the one-sided seeds, sorted, as text), ``n_one_sided`` and ``n``.
    """
    columns = [*POINT_KEYS, "seeds", "n_one_sided", "n"]
    found = []
    for family, (acc, f1) in BINARY_PAIRS.items():
        rows = seeds[(seeds["metric_family"] == family) & seeds["metric"].isin((acc, f1))]
        if rows.empty:
            continue
        keys = [*POINT_KEYS, "seed"]
        wide = rows.pivot_table(index=keys, columns="metric", values="value", dropna=False).reset_index()
        if acc not in wide or f1 not in wide:
            continue
        wide["_one_sided"] = (wide[acc] - wide[f1]) >= F1_GAP
        for key, point in wide.groupby(list(POINT_KEYS), dropna=False, sort=False):
            hit = sorted(point.loc[point["_one_sided"], "seed"].astype(int))
            if hit:
                found.append([*key, ", ".join(map(str, hit)), len(hit), len(point)])
    return pd.DataFrame(found, columns=columns)


def marks(points: pd.DataFrame, cells: pd.DataFrame) -> pd.Series:
    """:data:`MARK` for each row of ``points`` (entry x point x metric) that is a binary metric of a cell."""
    if cells.empty or points.empty:
        return pd.Series("", index=points.index, dtype="object")
    keyed = points[list(POINT_KEYS)].merge(
        cells[list(POINT_KEYS)].drop_duplicates(), how="left", indicator=True
    )
    hit = pd.Series(keyed["_merge"].eq("both").to_numpy(), index=points.index)
    binary = {m for pair in BINARY_PAIRS.values() for m in pair}
    return pd.Series("", index=points.index, dtype="object").where(
        ~(hit & points["metric"].isin(binary)), " " + MARK
    )


def causes(methods: list[str]) -> dict[str, str]:
    """What each method's README declares as the cause of its one-sided cells (those that declare one)."""
    from msabench.models import readme_declaration  # the registry module: no torch

    found = {}
    for method in methods:
        cause = readme_declaration(method, README_LABEL)
        if cause:
            found[method] = cause
    return found
