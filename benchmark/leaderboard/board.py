"""What a leaderboard is: its tables, its reference, and the column names every part agrees on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from msabench.errors import ConfigError

# Population std over training seeds, as MMSA reports it; the paired comparisons use the sample std.
STD_DDOF: Final[int] = 0
ENTRY_KEYS: Final[tuple[str, ...]] = ("dataset", "method", "train_policy", "config_id")
POINT_KEYS: Final[tuple[str, ...]] = (*ENTRY_KEYS, "protocol", "rate", "condition", "setting", "mask_seed")
REFERENCE_COLUMNS: Final[tuple[str, ...]] = (
    "dataset",
    "train_policy",
    "ref_method",
    "ref_policy",
    "ref_config",
)
PROTOCOL_ORDER: Final[dict[str, int]] = {"intra": 0, "inter": 1}


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
            ``grid``, ``nan_as_zero`` and the paired comparison.
        budgets: one row per (entry, training seed): models, epochs used and selected, cap, patience, runs
            at the cap, wall time (:mod:`~msabench.leaderboard.budgets`).
        failed: one row per failed run (``run_key``, ``dataset``, ``method``, ``train_policy``, ``seed``,
            ``error``).
        reference: the reference method, if any.
        references: per (dataset, train_policy) of the entries, the reference entry (``ref_method``,
            ``ref_policy``, ``ref_config``) they are compared with.
        pooled_code: one row per entry whose runs different code made, pooled because the caller said so
            (``--pool-across-code``): the entry's keys and ``versions``, each fingerprint with its seeds.
    """

    seeds: pd.DataFrame
    points: pd.DataFrame
    wide: pd.DataFrame
    summaries: pd.DataFrame
    budgets: pd.DataFrame
    failed: pd.DataFrame
    reference: Reference | None
    references: pd.DataFrame
    pooled_code: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*ENTRY_KEYS, "versions"]))
