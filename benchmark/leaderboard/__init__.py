"""The leaderboard: seed means and stds per setting, the field's summaries, paired comparisons.

One job per module, each importing only those listed before it:

- :mod:`~msabench.leaderboard.board`: the :class:`Leaderboard` and its :class:`Reference`;
- :mod:`~msabench.leaderboard.loading`: the results store read into one tidy frame, seeds selected;
- :mod:`~msabench.leaderboard.reference`: which entry each entry is compared with;
- :mod:`~msabench.leaderboard.stats`: paired differences and their Student-t interval;
- :mod:`~msabench.leaderboard.summaries`: mean over rates, AUILC, MultiBench robustness, Avg6/Avg7;
- :mod:`~msabench.leaderboard.budgets`: per entry and seed, the epochs used and selected, the cap, wall time;
- :mod:`~msabench.leaderboard.aggregate`: :func:`build`, from tidy rows to the leaderboard;
- :mod:`~msabench.leaderboard.render` and :mod:`~msabench.leaderboard.markdown`: the Markdown document;
- :mod:`~msabench.leaderboard.output`: :func:`write`, the CSVs, plots and Markdown on disk.

Definitions of every aggregate and summary: ``docs/metrics.md``. Importing the leaderboard loads neither
torch nor Lightning.
"""

from msabench.leaderboard.aggregate import build
from msabench.leaderboard.board import Leaderboard, Reference
from msabench.leaderboard.loading import load, select_seeds
from msabench.leaderboard.markdown import to_markdown
from msabench.leaderboard.output import write
from msabench.leaderboard.stats import CONFIDENCE, paired_interval

__all__ = [
    "CONFIDENCE",
    "Leaderboard",
    "Reference",
    "build",
    "load",
    "paired_interval",
    "select_seeds",
    "to_markdown",
    "write",
]
