"""A small real grid and its leaderboard from the local executor, shared by the executor tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch

from msabench import leaderboard as lb
from msabench import sweep as sw

# Three short epochs (not fast_dev_run): long enough for a test to catch a run between its start and its
# publication, short enough for the default suite. One thread per run, as the engines' tests give.
GRID_OVERRIDES = (
    "trainer.max_epochs=3",
    "trainer.patience=null",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "data.options.n_scale=0.05",
)


def small_grid_jobs(seeds: str = "1,2") -> list[sw.Job]:
    leaves = {"methods": "lf_dnn", "rates": "0,0.5", "train_policy": "complete", "seeds": seeds}
    return sw.expand(sw.SweepSpec((sw.grid_from_leaves(leaves),), GRID_OVERRIDES), extra_blocks=("smoke",))


def wide(root: Path) -> pd.DataFrame:
    return lb.build(lb.load(root), None).wide


@dataclass(frozen=True)
class SmallGrid:
    jobs: list[sw.Job]
    local_root: Path
    leaderboard: pd.DataFrame

    # the helpers travel with the fixture: test modules cannot import this conftest by name
    jobs_for = staticmethod(small_grid_jobs)
    wide = staticmethod(wide)


@pytest.fixture(scope="session")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> SmallGrid:
    """Two runs (lf_dnn, two seeds, two test settings each), trained inline with one thread."""
    jobs = small_grid_jobs()
    root = tmp_path_factory.mktemp("local") / "runs"
    threads = torch.get_num_threads()
    try:
        report = sw.run_sweep(jobs, root, workers=0, resources=sw.Resources(cpus_per_run=1))
    finally:
        torch.set_num_threads(threads)
    assert [o.status for o in report.outcomes] == ["finished", "finished"]
    return SmallGrid(jobs, root, wide(root))
