"""The shared vocabulary: every name the layers agree on, declared once.

Modalities, splits, protocols and conditions, training policies, text views, metric names, families and
directions. Definitions of what each one means are in ``docs/protocols.md``, ``docs/policies.md`` and
``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, Literal

# ------------------------------------------------------------------------------------------------- modalities
Modality = Literal["text", "audio", "vision"]
MODALITIES: Final[tuple[Modality, Modality, Modality]] = ("text", "audio", "vision")
# Conditions are written in these letters, in this (t, a, v) order.
MODALITY_LETTERS: Final[dict[str, Modality]] = {"t": "text", "a": "audio", "v": "vision"}

# ----------------------------------------------------------------------------------------------------- splits
Split = Literal["train", "valid", "test"]
SPLITS: Final[tuple[Split, Split, Split]] = ("train", "valid", "test")

# -------------------------------------------------------------------------------------- protocols, conditions
ProtocolName = Literal["complete", "intra", "inter", "condition", "stochastic"]
PROTOCOL_NAMES: Final[tuple[ProtocolName, ...]] = ("complete", "intra", "inter", "condition", "stochastic")
# The protocols that take a rate, in the order the leaderboard and the sweeps list them.
RATE_PROTOCOLS: Final[tuple[str, ...]] = ("intra", "inter")
MAX_INTRA_RATE: Final[float] = 1.0
# Every sample keeps at least one of its three modalities, so at most two thirds of the pairs go missing.
MAX_INTER_RATE: Final[float] = 2.0 / 3.0
# The six fixed-availability conditions of MMIN/IF-MMIN and CorrKD, then the complete one.
MISSING_CONDITIONS: Final[tuple[str, ...]] = ("t", "a", "v", "ta", "tv", "av")
ALL_CONDITIONS: Final[tuple[str, ...]] = (*MISSING_CONDITIONS, "tav")

# -------------------------------------------------------------------------------------------- training policy
PolicyName = Literal["complete", "matched", "lnln", "conditions", "stochastic"]
POLICIES: Final[tuple[PolicyName, ...]] = ("complete", "matched", "lnln", "conditions", "stochastic")
# ``paper`` is not a policy of its own: it names the one a method's config.yaml declares.
PAPER_POLICY: Final[str] = "paper"
POLICY_CHOICES: Final[tuple[str, ...]] = (*POLICIES, PAPER_POLICY)

# ------------------------------------------------------------------------------------------------- text views
TextViewName = Literal["reencoded", "intact", "stored", "noncontextual"]
TEXT_VIEWS: Final[tuple[TextViewName, ...]] = ("reencoded", "intact", "stored", "noncontextual")
# What a user may ask for: ``auto`` picks by the data (re-encoded where the text is contextual).
TEXT_VIEW_CHOICES: Final[tuple[str, ...]] = ("auto", "reencoded", "stored")
# Where a sweep's runs go (`--executor`): local processes, a Ray cluster, SLURM through submitit.
EXECUTORS: Final[tuple[str, ...]] = ("local", "ray", "slurm")

# ---------------------------------------------------------------------------------------------------- metrics
MetricFamily = Literal["mosi", "sims", "iemocap"]
# Each family's metric columns, in display order.
METRIC_NAMES: Final[dict[MetricFamily, tuple[str, ...]]] = {
    "mosi": ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc5", "acc7", "mae", "corr"),
    "sims": ("acc2", "acc3", "acc5", "f1", "mae", "corr"),
    "iemocap": ("wa", "ua", "f1_macro"),
}
LOWER_IS_BETTER: Final[frozenset[str]] = frozenset({"mae", "loss"})
# Shown as they are; every other metric (accuracies, F1) is a fraction shown in percent.
RAW_UNITS: Final[frozenset[str]] = frozenset({"mae", "corr", "loss"})


def higher_is_better(metric: str) -> bool:
    """Direction of a metric column: every column is higher-is-better except MAE (and a loss)."""
    return metric not in LOWER_IS_BETTER


def is_percent(metric: str) -> bool:
    """Whether a metric is shown in percent (accuracies, F1) rather than raw (MAE, Corr, a loss)."""
    return metric not in RAW_UNITS


def metric_order(metrics: Iterable[str]) -> list[str]:
    """Metrics in the field's column order (the families' orders, then any others sorted)."""
    present = set(metrics)
    canonical = list(dict.fromkeys(m for names in METRIC_NAMES.values() for m in names))
    return [m for m in canonical if m in present] + sorted(present - set(canonical))


# ----------------------------------------------------------------------------------------------- data variant
# How a dataset's files lay the modalities out, plus any normalisation applied; rows that record none are
# of the default, the layout msabench reads when nothing else is asked.
DEFAULT_DATA_VARIANT: Final[str] = "unaligned"
