"""What each entry trained and where it stopped: the network's size, epochs used and selected, cap, wall time.

One row per (entry, training seed), from the per-seed rows (one run gives the same facts on every setting,
so each run counts once). A run with a patience stopped early unless it used every epoch of its cap; a run
without one trains to its cap by design (the paper's fixed epochs, the best validation epoch kept). The
epochs are those of the final stage (a pretraining stage's are fixed by its config). Rows written before
msabench recorded the cap and the patience leave them empty.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from msabench.leaderboard.board import ENTRY_KEYS

BUDGET_COLUMNS: Final[tuple[str, ...]] = (
    *ENTRY_KEYS,
    "seed",
    "models",
    "params",
    "epochs_min",
    "epochs_median",
    "epochs_max",
    "ckpt_epoch_min",
    "ckpt_epoch_median",
    "ckpt_epoch_max",
    "max_epochs",
    "patience",
    "at_cap",
    "wall_time_s",
)


def budgets(seeds: pd.DataFrame) -> pd.DataFrame:
    """Per (entry, seed): the models and their size, the epochs used and selected, the cap, the runs at it.

    Args:
        seeds: the leaderboard's per-seed rows (finished runs), with ``epochs``, ``ckpt_epoch``,
            ``wall_time_s`` and, where recorded, ``max_epochs`` and ``patience``.

    Returns:
        One row per (entry, seed) with :data:`BUDGET_COLUMNS`. ``at_cap`` counts the runs that used every
        epoch of their cap (for an entry without patience, all of them, by design); ``wall_time_s`` sums the
        runs' training and test time; ``max_epochs`` and ``patience`` are NaN where not recorded, or where the
        entry's runs differ (they never do within one config); ``params`` is the network's parameter count
        (NaN where the runs differ), which tells a reduced-width preset from the released network.
    """
    if seeds.empty:
        return pd.DataFrame(columns=list(BUDGET_COLUMNS))
    grouped = runs(seeds).groupby([*ENTRY_KEYS, "seed"], sort=False, dropna=False)
    out = grouped.agg(
        models=("run_key", "size"),
        params=("params", _the_one),
        epochs_min=("epochs", "min"),
        epochs_median=("epochs", "median"),
        epochs_max=("epochs", "max"),
        ckpt_epoch_min=("ckpt_epoch", "min"),
        ckpt_epoch_median=("ckpt_epoch", "median"),
        ckpt_epoch_max=("ckpt_epoch", "max"),
        max_epochs=("max_epochs", _the_one),
        patience=("patience", _the_one),
        at_cap=("at_cap", "sum"),
        wall_time_s=("wall_time_s", lambda v: v.sum(min_count=1)),
    ).reset_index()
    return out.sort_values([*ENTRY_KEYS, "seed"], kind="stable").reset_index(drop=True)[list(BUDGET_COLUMNS)]


def runs(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per run with its numeric facts and ``at_cap`` (it used every epoch of its recorded cap)."""
    out = seeds.drop_duplicates("run_key").copy()
    facts = ("epochs", "ckpt_epoch", "max_epochs", "patience", "wall_time_s", "params")
    for column in facts:  # any may be unrecorded
        out[column] = pd.to_numeric(out[column], errors="coerce") if column in out else float("nan")
    out["at_cap"] = out["epochs"].ge(out["max_epochs"])
    return out.reset_index(drop=True)


def _the_one(values: pd.Series) -> float:
    """The value every run shares, NaN when they differ or none recorded it."""
    distinct = values.dropna().unique()
    return float(distinct[0]) if len(distinct) == 1 else float("nan")
