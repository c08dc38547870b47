"""The leaderboard as a Markdown document: per dataset and protocol, the summaries, then per-point tables."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final

import pandas as pd

from msabench.core.io import slug
from msabench.core.vocabulary import ALL_CONDITIONS, DEFAULT_DATA_VARIANT, RATE_PROTOCOLS, metric_order
from msabench.leaderboard.board import ENTRY_KEYS, PROTOCOL_ORDER, STD_DDOF, Leaderboard
from msabench.leaderboard.budgets import runs
from msabench.leaderboard.one_sided import F1_GAP, MARK, causes, marks, one_sided
from msabench.leaderboard.render import (
    MISSING,
    POOLED_CODE_MARK,
    entry_labels,
    fmt,
    grid_text,
    markdown_table,
    metric_header,
    value_table,
)
from msabench.leaderboard.summaries import PAIRED_SUMMARIES

TEXT_VIEW_NOTES: Final[dict[str, str]] = {
    "reencoded": "re-encoded: where tokens were dropped, the text was recomputed from the damaged sentence "
    "by the encoder the features came from",
    "intact": "intact: the stored contextual features, and no token was dropped from a present text (whole "
    "modalities only), so nothing leaks; pooled with re-encoded runs",
    "stored": "**stored**: the stored contextual features with dropped tokens zeroed; kept tokens still "
    "encode the dropped words, so text drops leak",
    "noncontextual": "token-wise features: a dropped token leaves nothing behind",
}
_SUMMARY_TITLES: Final[dict[str, str]] = {
    "mean_r": "Mean over rates (LNLN)",
    "auilc": "AUILC (TFR-Net / EMT-DLFR)",
    "avg6": "Avg over the six missing conditions (MMIN / CorrKD)",
    "avg7": "Avg over the seven conditions, complete included (SemMSA)",
}
_SUMMARY_WHAT: Final[dict[str, str]] = {
    "mean_r": "plain mean of the per-rate values",
    "auilc": "trapezoid area under the metric-vs-rate curve, not normalised by the span "
    "(accuracies and F1 on the percentage scale)",
}
_RATE_NAMES: Final[dict[str, str]] = {"intra": "intra-modal rate r", "inter": "sample-level missing rate MR"}


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
    sided = one_sided(seeds)
    for dataset, ds_points in board.points.groupby("dataset", sort=False):
        ds_points = ds_points.assign(_flag=marks(ds_points, sided))
        metrics = metric_order(ds_points["metric"].unique())
        lines += [f"## {dataset}", "", *_data_lines(seeds, str(dataset)), ""]
        lines += _pooled_code_lines(board, str(dataset))
        if board.reference is not None and dataset not in set(board.references["dataset"]):
            lines += [f"No `{board.reference.method}` runs on {dataset}: no paired comparison here.", ""]
        ds_summaries = board.summaries[board.summaries["dataset"] == dataset]
        rated = ds_points[ds_points["rate"].notna()]
        for protocol in [p for p in RATE_PROTOCOLS if p in set(rated["protocol"])]:
            points = rated[rated["protocol"] == protocol]
            lines += _rate_section(
                board, str(dataset), protocol, points, ds_summaries, metrics, plots_dir, base
            )
        cond = ds_points[ds_points["condition"].notna()]
        if len(cond):
            lines += _condition_section(board, str(dataset), cond, ds_summaries, metrics, plots_dir, base)
        lines += _paired_section(board, ds_summaries, metrics)
        lines += _budget_section(board, str(dataset))
    lines += _footnotes(board)
    lines += _one_sided_section(sided)
    return "\n".join(lines).rstrip() + "\n"


def _one_sided_section(cells: pd.DataFrame) -> list[str]:
    """Per dataset and entry, the cells marked one-sided with their seeds, and the cause a README declares."""
    if cells.empty:
        return []
    lines = [
        "## One-sided cells",
        "",
        f"{MARK} marks a cell where, in at least one seed, the binary F1 is at least {100 * F1_GAP:.0f} pp "
        "below the binary accuracy (Has0 on MOSI/MOSEI): that seed's predictions fall (nearly) all on one "
        "side of zero, so its accuracy is about the share of one class, whatever its Corr. At intra r = 1 "
        "every frame and word is removed: one-sided predictions are expected there from every method. Per "
        "entry, the cells and their one-sided seeds; the cause where the method's README declares one "
        "(`docs/metrics.md`):",
        "",
    ]
    declared = causes(sorted(set(cells["method"].astype(str))))
    for (dataset, method, policy), entry in cells.groupby(["dataset", "method", "train_policy"], sort=False):
        order = entry.assign(
            _kind=entry["condition"].notna().astype(int) + entry["protocol"].map(PROTOCOL_ORDER).fillna(2),
            _condition=entry["condition"].map({c: i for i, c in enumerate(ALL_CONDITIONS)}),
        ).sort_values(["_kind", "rate", "_condition"], kind="stable")
        where = ", ".join(
            f"{_cell_name(r)} ({'seeds' if r['n_one_sided'] > 1 else 'seed'} {r['seeds']} of {r['n']})"
            for _, r in order.iterrows()
        )
        cause = f" Cause ({method}'s README): {declared[str(method)]}" if str(method) in declared else ""
        lines.append(f"- {dataset}, `{method}` ({policy}): {where}.{cause}")
    return [*lines, ""]


def _cell_name(row: pd.Series) -> str:
    """``intra r 0.9``, ``MR 0.3`` or ``condition av``."""
    if isinstance(row["condition"], str):
        return f"condition {row['condition']}"
    return f"{'intra r' if row['protocol'] == 'intra' else 'MR'} {row['rate']:g}"


def _budget_section(board: Leaderboard, dataset: str) -> list[str]:
    """Per entry: its stopping rule, the epochs its runs used and selected, runs at the cap, wall time."""
    per_seed = board.budgets[board.budgets["dataset"] == dataset]
    if per_seed.empty:
        return []
    runs_of = dict(tuple(runs(board.seeds[board.seeds["dataset"] == dataset]).groupby(list(ENTRY_KEYS))))
    header = [
        "method",
        "policy",
        "models",
        "parameters",
        "stopping",
        "epochs used",
        "selected epoch",
        "at cap",
        "wall per seed (s)",
    ]
    table = []
    labels = entry_labels(per_seed, board)
    for key, entry in per_seed.groupby(list(ENTRY_KEYS), sort=False):
        its_runs = runs_of[key]
        first = entry.iloc[0]
        cap, patience = first["max_epochs"], first["patience"]
        if pd.isna(cap):
            stopping = "not recorded"
        elif pd.isna(patience):
            stopping = f"fixed {cap:g} epochs"
        else:
            stopping = f"patience {patience:g}, cap {cap:g}"
        at_cap = "—" if pd.isna(cap) or pd.isna(patience) else f"{int(entry['at_cap'].sum())}"
        walls = ", ".join(
            f"{int(s)}: {w:,.0f}"
            for s, w in zip(entry["seed"], entry["wall_time_s"], strict=True)
            if pd.notna(w)
        )
        models = "/".join(sorted({str(int(m)) for m in entry["models"]})) + " per seed"
        sizes = {int(p) for p in entry["params"].dropna()}
        parameters = f"{sizes.pop():,}" if len(sizes) == 1 else MISSING
        table.append(
            [
                labels[entry.index[0]],
                str(first["train_policy"]),
                models,
                parameters,
                stopping,
                _span(its_runs["epochs"]),
                _span(its_runs["ckpt_epoch"]),
                at_cap,
                walls or MISSING,
            ]
        )
    return [
        f"### {dataset} · training budgets",
        "",
        "Per entry, over all its runs: the network's parameters (a reduced-width preset shows here; the "
        "method's README names it), the epochs each run used (min–max, median) and the epoch its checkpoint "
        "was selected at; the runs that used every epoch of their cap (with a patience only: without one a "
        "run trains to its cap by design and keeps its best validation epoch); and the wall time per "
        "training seed (training and test, summed over the seed's models). Multi-stage methods: the final "
        "stage.",
        "",
        *markdown_table(header, table),
        "",
    ]


def _span(values: pd.Series) -> str:
    """``low–high (median m)`` of the runs' values, or the one value when all runs agree."""
    values = values.dropna()
    if values.empty:
        return MISSING
    low, high = values.min(), values.max()
    return f"{low:g}" if low == high else f"{low:g}–{high:g} (median {values.median():g})"


def _data_lines(seeds: pd.DataFrame, dataset: str) -> list[str]:
    """What data the dataset's rows saw: the text view, and the data variant where the rows record one."""
    rows = seeds[seeds["dataset"] == dataset]
    views = sorted(set(rows["text_view"].dropna().astype(str)))
    if not views:
        lines = ["Text view: not recorded (runs made before msabench recorded it)."]
    else:
        lines = ["Text view: " + "; ".join(TEXT_VIEW_NOTES.get(v, v) for v in views) + "."]
    recorded = sorted(set(rows["data_variant"].dropna().astype(str))) if "data_variant" in rows else []
    if recorded:
        unrecorded = rows["data_variant"].isna().any()
        note = f" (runs that did not record it count as `{DEFAULT_DATA_VARIANT}`)" if unrecorded else ""
        lines.append(f"Data variant: {', '.join(f'`{v}`' for v in recorded)}{note}.")
    return lines


def _pooled_code_lines(board: Leaderboard, dataset: str) -> list[str]:
    """The entries of ``dataset`` whose runs different code made, each code version with its seeds."""
    pooled = board.pooled_code[board.pooled_code["dataset"] == dataset]
    if pooled.empty:
        return []
    entries = "; ".join(
        f"`{r['method']}` ({r['train_policy']}): {r['versions']}" for _, r in pooled.iterrows()
    )
    return [
        f"{POOLED_CODE_MARK} **Pooled across code versions** (`--pool-across-code`): every cell of these "
        f"entries averages runs that different code made (code fingerprints, or `git:` the commit of runs "
        f"that predate them): {entries}.",
        "",
    ]


def _rate_section(
    board: Leaderboard,
    dataset: str,
    protocol: str,
    points: pd.DataFrame,
    summaries: pd.DataFrame,
    metrics: list[str],
    plots_dir: Path | None,
    base: Path | None,
) -> list[str]:
    lines = [f"### {dataset} · {protocol} ({_RATE_NAMES[protocol]})", ""]
    sums = summaries[summaries["protocol"] == protocol]
    for summary in ("mean_r", "auilc"):
        part = sums[sums["summary"] == summary]
        if part.empty:
            continue
        grids = sorted(set(part["grid"]), key=len, reverse=True)
        lines += [
            f"**{_SUMMARY_TITLES[summary]}**: {_SUMMARY_WHAT[summary]}; rates {grid_text(grids[0])}.",
            "",
        ]
        if len(grids) > 1:
            lines += [
                "Some entries were run on other rates (their grids are in the summary CSV): compare "
                "within one grid only.",
                "",
            ]
        lines += value_table(part, metrics, [], "value", "std", board) + [""]
    if len(sums[sums["summary"] == "rr_raw"]):
        lines += _robustness_table(board, sums, metrics)
    lines += ["**Per rate** (mean ± std over seeds)", ""]
    lines += value_table(points, metrics, ["rate"], "mean", "std", board) + [""]
    if plots_dir is not None:
        lines += _plot_links(plots_dir, base, f"{slug(dataset)}__{protocol}__", metrics)
    return lines


def _robustness_table(board: Leaderboard, sums: pd.DataFrame, metrics: list[str]) -> list[str]:
    rr = sums[sums["summary"] == "rr_raw"]
    er = sums[sums["summary"] == "er_raw"]
    ref = board.reference.label if board.reference else "the reference"
    lines = [
        f"**MultiBench robustness** (rates {grid_text(rr['grid'].iloc[0])}): relative robustness `rr_raw` "
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
            f"{fmt(a, m)} / {fmt(b, m, signed=True)}"
            for a, b, m in zip(merged["value"], merged["er"], merged["metric"], strict=True)
        ],
        _label=entry_labels(merged, board),
    )
    rows = []
    for (label, policy), group in merged.groupby(["_label", "train_policy"], sort=False):
        cells = dict(zip(group["metric"], group["shown"], strict=True))
        rows.append(
            [str(label), str(policy), str(int(group["n"].iloc[0])), *[cells.get(m, MISSING) for m in metrics]]
        )
    header = ["method", "policy", "n", *[metric_header(m) for m in metrics]]
    return [*lines, *markdown_table(header, rows), ""]


def _condition_section(
    board: Leaderboard,
    dataset: str,
    points: pd.DataFrame,
    summaries: pd.DataFrame,
    metrics: list[str],
    plots_dir: Path | None,
    base: Path | None,
) -> list[str]:
    lines = [f"### {dataset} · availability conditions (whole modalities missing)", ""]
    for summary in ("avg6", "avg7"):
        part = summaries[summaries["summary"] == summary]
        if part.empty:
            continue
        lines += [f"**{_SUMMARY_TITLES[summary]}**: conditions {part['grid'].iloc[0]}.", ""]
        lines += value_table(part, metrics, [], "value", "std", board) + [""]
    lines += ["**Per condition** (available modalities; mean ± std over seeds)", ""]
    lines += value_table(points, metrics, ["condition"], "mean", "std", board) + [""]
    if plots_dir is not None:
        lines += _plot_links(plots_dir, base, f"{slug(dataset)}__conditions__", metrics)
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
    rows = []
    labelled = part.assign(_label=entry_labels(part, board))
    for key, group in labelled.groupby(["protocol", "summary", "_label", "train_policy"], sort=False):
        cells = {}
        for _, r in group.iterrows():
            m = r["metric"]
            text = fmt(r["diff_mean"], m, signed=True)
            if not math.isnan(r["diff_lo"]):
                text += f" [{fmt(r['diff_lo'], m, signed=True)}, {fmt(r['diff_hi'], m, signed=True)}]"
            cells[m] = text + ("*" if r["significant"] else "")
        pairs = str(int(group["n_pairs"].max()))
        rows.append([*map(str, key), pairs, *[cells.get(m, MISSING) for m in metrics]])
    header = [
        "protocol",
        "summary",
        "method",
        "policy",
        "pairs",
        *[metric_header(m, unit="pp") for m in metrics],
    ]
    return [*lines, *markdown_table(header, rows), ""]


def _plot_links(plots_dir: Path, base: Path | None, prefix: str, metrics: list[str]) -> list[str]:
    links = []
    for metric in metrics:
        path = Path(plots_dir) / f"{prefix}{metric}.png"
        if path.exists():
            links.append(f"[{metric}]({_relative(path, base)})")
    return [f"Plots: {' · '.join(links)}", ""] if links else []


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return path.as_posix()
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
        rows = [
            [
                str(r["dataset"]),
                str(r["method"]),
                str(r["train_policy"]),
                str(r["seed"]),
                str(r["error"]).replace("|", "\\|").splitlines()[0] if isinstance(r["error"], str) else "",
            ]
            for _, r in board.failed.iterrows()
        ]
        lines += ["## Failed runs", ""]
        lines += markdown_table(["dataset", "method", "policy", "seed", "error"], rows)
        lines.append("")
    return lines
