"""Rendering pieces: the one Markdown table writer, number formatting and entry labels.

Only rendering rounds and scales: the CSVs hold full precision, accuracies and F1 as fractions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from msabench.core.vocabulary import higher_is_better, is_percent
from msabench.leaderboard.board import ENTRY_KEYS, Leaderboard
from msabench.leaderboard.reference import is_reference

MISSING: str = "—"
POOLED_CODE_MARK: str = "‡"  # an entry whose runs different code made (pooled by --pool-across-code)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown pipe table, one line per row (cells already rendered)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def fmt(value: float, metric: str, scale_percent: bool = True, signed: bool = False) -> str:
    """A metric value as shown: accuracies and F1 x100 with two decimals, MAE and Corr with three."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    percent = is_percent(metric) and scale_percent
    shown = 100.0 * value if percent else value
    digits = 2 if percent else 3
    text = f"{shown:+.{digits}f}" if signed else f"{shown:.{digits}f}"
    return text.replace("-", "−")


def metric_header(metric: str, percent: bool = True, unit: str = "%") -> str:
    """A metric's column title, with its unit where it is shown in percent (or percentage points)."""
    return f"{metric} ({unit})" if is_percent(metric) and percent else metric


def grid_text(grid: str) -> str:
    """A grid of rates as read in prose: ``0–1 step 0.1 (11 points)`` or the list itself."""
    values = [float(v) for v in grid.split(",")]
    steps = np.diff(values)
    if len(values) > 3 and np.allclose(steps, steps[0]):
        return f"{values[0]:g}–{values[-1]:g} step {steps[0]:g} ({len(values)} points)"
    return ", ".join(f"{v:g}" for v in values)


def entry_labels(frame: pd.DataFrame, board: Leaderboard) -> pd.Series:
    """``method`` (plus ``[config]`` where one method/policy has several configs; ``(reference)`` marked).

    An entry pooled across code versions ends in :data:`POOLED_CODE_MARK`, so every cell of it shows it.
    """
    many = frame.groupby(["dataset", "method", "train_policy"])["config_id"].transform("nunique") > 1
    labels = frame["method"].where(~many, frame["method"] + " [" + frame["config_id"] + "]")
    if not board.references.empty:
        labels = labels.where(~is_reference(frame, board.references), labels + " (reference)")
    if len(board.pooled_code):
        keys = list(ENTRY_KEYS)
        pooled = frame[keys].merge(board.pooled_code[keys].drop_duplicates(), how="left", indicator=True)
        marked = pd.Series(pooled["_merge"].eq("both").to_numpy(), index=frame.index)
        labels = labels.where(~marked, labels + " " + POOLED_CODE_MARK)
    return labels


def value_table(
    rows: pd.DataFrame,
    metrics: list[str],
    lead: list[str],
    value: str,
    std: str | None,
    board: Leaderboard,
    percent: bool = True,
    bold: bool = True,
) -> list[str]:
    """One line per entry (``rows``: one row per entry x metric), ``mean ± std``; the best per column bold.

    ``lead`` columns (a rate, a condition) come first and each of their values is a group of its own for the
    bold; ↑/↓ marks a significant paired difference with the reference.
    """
    rows = rows.assign(_label=entry_labels(rows, board))
    entries = rows.drop_duplicates([*lead, "_label", "train_policy"])[[*lead, "_label", "train_policy", "n"]]
    cells: dict[tuple, dict[str, tuple[str, str, str]]] = {}
    best: dict[tuple, dict[str, str]] = {}
    frame = rows.assign(_all=0)
    for metric in metrics:
        sub = frame[frame["metric"] == metric]
        for _, r in sub.iterrows():
            key = (*[r[c] for c in lead], r["_label"], r["train_policy"])
            shown = fmt(r[value], metric, percent)
            text = shown
            if std is not None and r["n"] > 1 and not math.isnan(r[std]):
                text += " ± " + fmt(r[std], metric, percent)
            flag = r["_flag"] if "_flag" in r and isinstance(r["_flag"], str) else ""  # one-sided cells
            cells.setdefault(key, {})[metric] = (text, shown, _mark(r) + flag)
        if bold:
            for gkey, group in sub.groupby(lead or ["_all"], dropna=False, sort=False):
                target = _best(group[value], metric, percent)
                if target is not None:
                    best.setdefault(gkey if isinstance(gkey, tuple) else (gkey,), {})[metric] = target
    lines = []
    for _, e in entries.iterrows():
        key = (*[e[c] for c in lead], e["_label"], e["train_policy"])
        gkey = tuple(e[c] for c in lead) if lead else (0,)
        out = [*[_lead_text(e[c]) for c in lead], str(e["_label"]), str(e["train_policy"]), str(int(e["n"]))]
        for metric in metrics:
            text, shown, mark = cells.get(key, {}).get(metric, (MISSING, MISSING, ""))
            if best.get(gkey, {}).get(metric) == shown:
                text = f"**{text}**"
            out.append(text + mark)
        lines.append(out)
    header = [*lead, "method", "policy", "n", *[metric_header(m, percent) for m in metrics]]
    return markdown_table(header, lines)


def _best(values: pd.Series, metric: str, percent: bool) -> str | None:
    """The best value as shown (ties on the shown digits all bold); None with fewer than two values."""
    shown = [fmt(v, metric, percent).replace("−", "-") for v in values]
    numbers = [float(s) for s in shown if s != MISSING]
    if len(numbers) < 2:
        return None
    target = max(numbers) if higher_is_better(metric) else min(numbers)
    return f"{target:.{2 if is_percent(metric) and percent else 3}f}".replace("-", "−")


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
