"""Sweeps: a grid of datasets x methods x policies x seeds x test settings, run resumably on an executor.

The parts, each in its own module:

- :mod:`~msabench.sweep.spec`: sweep files, presets and flags parsed into a :class:`SweepSpec` (grids checked
  against structured schemas);
- :mod:`~msabench.sweep.expand`: the spec expanded into :class:`Job` s, one per checkpoint to train;
- :mod:`~msabench.sweep.worker`: what runs one job anywhere (:func:`run_job`) and its :class:`Outcome`;
- :mod:`~msabench.sweep.executors`: where jobs run (``local`` processes; ``ray`` and ``slurm`` in
  :mod:`~msabench.sweep.ray_executor` and :mod:`~msabench.sweep.slurm_executor`);
- :mod:`~msabench.sweep.progress`: done / running / failed / left, ETA, per node;
- :mod:`~msabench.sweep.engine`: the driver (:func:`run_sweep`).
"""

from msabench.sweep.backends import EXECUTORS
from msabench.sweep.engine import LOCK_FILE, MAX_ATTEMPTS, STATE_DIR, _sweep_lock, run_sweep
from msabench.sweep.executors import (
    Backend,
    InlineExecutor,
    LocalBackend,
    Resources,
    available_cores,
    process_pool,
)
from msabench.sweep.expand import Job, expand, sweep_id
from msabench.sweep.progress import Progress
from msabench.sweep.spec import (
    FILE_KEYS,
    GRID_KEYS,
    RATE_PROTOCOLS,
    Grid,
    SweepSpec,
    build_spec,
    grid_from_leaves,
    load_sweep_file,
    parse_names,
    parse_rates,
    parse_seeds,
    presets,
)
from msabench.sweep.worker import Outcome, SweepReport, run_job

__all__ = [
    "EXECUTORS",
    "FILE_KEYS",
    "GRID_KEYS",
    "LOCK_FILE",
    "MAX_ATTEMPTS",
    "RATE_PROTOCOLS",
    "STATE_DIR",
    "Backend",
    "Grid",
    "InlineExecutor",
    "Job",
    "LocalBackend",
    "Outcome",
    "Progress",
    "Resources",
    "SweepReport",
    "SweepSpec",
    "_sweep_lock",
    "available_cores",
    "build_spec",
    "expand",
    "grid_from_leaves",
    "load_sweep_file",
    "parse_names",
    "parse_rates",
    "parse_seeds",
    "presets",
    "process_pool",
    "run_job",
    "run_sweep",
    "sweep_id",
]
