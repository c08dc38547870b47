"""Leaderboard plots (PNG): metric-vs-rate curves with a band over seeds, and bar charts per condition.

Figures are built with the object-oriented Matplotlib API on the Agg canvas (no pyplot state, no display
needed), so plotting is safe in worker processes and on headless machines.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from msabench.core.io import atomic_write, slug
from msabench.core.vocabulary import ALL_CONDITIONS, is_percent, metric_order

_AXIS = {"intra": "intra-modal missing rate r", "inter": "sample-level missing rate MR"}


def write_all(points: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Every plot of a leaderboard's ``points`` table into ``out_dir``; returns the files written.

    Files: ``<dataset>__<protocol>__<metric>.png`` (one line per method and policy, mean over seeds with a
    +-1 population-std band) and ``<dataset>__conditions__<metric>.png`` (grouped bars, std as error bars).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for (dataset, protocol), group in points[points["rate"].notna()].groupby(
        ["dataset", "protocol"], sort=False
    ):
        for metric in metric_order(group["metric"].unique()):
            path = out_dir / f"{slug(dataset)}__{protocol}__{metric}.png"
            rate_curves(group[group["metric"] == metric], metric, f"{dataset} · {protocol}", path, protocol)
            written.append(path)
    for dataset, group in points[points["condition"].notna()].groupby("dataset", sort=False):
        for metric in metric_order(group["metric"].unique()):
            path = out_dir / f"{slug(dataset)}__conditions__{metric}.png"
            condition_bars(
                group[group["metric"] == metric], metric, f"{dataset} · availability conditions", path
            )
            written.append(path)
    return written


def rate_curves(points: pd.DataFrame, metric: str, title: str, path: Path, protocol: str = "intra") -> Path:
    """One metric against the missing rate: a line per (method, policy), a band of +-1 std over seeds."""
    fig, ax = _figure()
    scale = 100.0 if is_percent(metric) else 1.0
    for (label, _), group in _by_entry(points):
        group = group.sort_values("rate")
        x = group["rate"].to_numpy(dtype=float)
        y = scale * group["mean"].to_numpy(dtype=float)
        s = scale * np.nan_to_num(group["std"].to_numpy(dtype=float))
        (line,) = ax.plot(x, y, marker="o", markersize=3, label=label)
        if (group["n"] > 1).any():
            ax.fill_between(x, y - s, y + s, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(_AXIS.get(protocol, "missing rate"))
    ax.set_ylabel(_ylabel(metric))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend_beside(fig, "mean, band ±1 std\nover seeds (ddof 0)")
    return _save(fig, path)


def condition_bars(points: pd.DataFrame, metric: str, title: str, path: Path) -> Path:
    """One metric per availability condition: grouped bars per (method, policy), std as error bars."""
    fig, ax = _figure(width=8.0)
    scale = 100.0 if is_percent(metric) else 1.0
    conditions = [c for c in ALL_CONDITIONS if c in set(points["condition"])]
    entries = list(_by_entry(points))
    width = 0.8 / max(len(entries), 1)
    x = np.arange(len(conditions), dtype=float)
    for i, ((label, _), group) in enumerate(entries):
        by_condition = group.set_index("condition")
        means = scale * by_condition["mean"].reindex(conditions).to_numpy(dtype=float)
        stds = scale * np.nan_to_num(by_condition["std"].reindex(conditions).to_numpy(dtype=float))
        ax.bar(x + (i - (len(entries) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=label)
    ax.set_xticks(x, conditions)
    ax.set_xlabel("available modalities (t text, a audio, v vision)")
    ax.set_ylabel(_ylabel(metric))
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    _legend_beside(fig, "mean, bars ±1 std\nover seeds (ddof 0)")
    return _save(fig, path)


def _legend_beside(fig, title: str) -> None:  # noqa: ANN001 - a matplotlib Figure
    # Right of the axes: bars fill the whole width, and curves of many methods leave no corner free either.
    fig.legend(loc="outside right upper", fontsize=8, title=title, title_fontsize=7)


def _by_entry(points: pd.DataFrame):  # noqa: ANN202 - a pandas groupby iterator
    labels = points["method"] + " (" + points["train_policy"] + ")"
    many = points.groupby(["method", "train_policy"])["config_id"].transform("nunique") > 1
    labels = labels.where(~many, labels + " [" + points["config_id"] + "]")
    return points.assign(_label=labels).groupby(["_label", "config_id"], sort=True)


def _ylabel(metric: str) -> str:
    return f"{metric} (%)" if is_percent(metric) else metric


def _figure(width: float = 6.0):  # noqa: ANN202 - matplotlib types
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 4.0), dpi=120, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write(path, buffer.getvalue())
