"""Writing the leaderboard: the CSVs (full precision), the plots and the Markdown."""

from __future__ import annotations

from pathlib import Path

from msabench.core.io import atomic_write
from msabench.errors import ConfigError
from msabench.leaderboard import plots
from msabench.leaderboard.board import Leaderboard
from msabench.leaderboard.markdown import to_markdown


def write(
    board: Leaderboard,
    out: Path,
    fmt: str = "csv",
    plots_dir: Path | None = None,
    source: str = "",
) -> list[Path]:
    """Write the leaderboard files; returns their paths.

    ``out`` (``.csv``) gets the wide table; beside it ``<stem>.long.csv`` (per point and metric, with the
    paired comparison), ``<stem>.summary.csv`` (the summaries) and ``<stem>.budgets.csv`` (per entry and seed,
    the epochs used and the wall time). ``fmt="md"`` also writes ``<stem>.md``. All
    CSVs hold full precision, accuracies and F1 as fractions; only the Markdown rounds and scales.
    """
    if fmt not in ("csv", "md"):
        raise ConfigError(f"unknown leaderboard format '{fmt}': use csv or md")
    out = Path(out)
    stem = out.with_suffix("") if out.suffix in (".csv", ".md") else out
    tables = {
        ".csv": board.wide,
        ".long.csv": board.points,
        ".summary.csv": board.summaries,
        ".budgets.csv": board.budgets,
    }
    written = []
    for suffix, table in tables.items():
        path = stem.with_name(stem.name + suffix)
        atomic_write(path, table.to_csv(index=False, float_format="%.17g"))
        written.append(path)
    if plots_dir is not None:
        written += plots.write_all(board.points, Path(plots_dir))
    if fmt == "md":
        md = stem.with_name(stem.name + ".md")
        atomic_write(md, to_markdown(board, source=source, plots_dir=plots_dir, base=md.parent))
        written.append(md)
    return written
