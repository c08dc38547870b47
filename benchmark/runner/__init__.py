"""The runner: one run = (dataset, method, training policy, seed, config) -> one checkpoint.

The checkpoint is selected on validation only and evaluated on every requested test setting without
retraining. The parts, one job each:

- :mod:`~msabench.runner.request`: the request, its composed config, the policy's validation settings;
- :mod:`~msabench.runner.checks`: one-line config errors before anything is read or written;
- :mod:`~msabench.runner.prepare`: the request resolved against its data, with its run key;
- :mod:`~msabench.runner.identity`: run key, run name and provenance (version, git commit);
- :mod:`~msabench.runner.trainer`: the Lightning Trainer from the typed ``trainer`` block;
- :mod:`~msabench.runner.stages`: the method's stages, each a ``Trainer.fit``;
- :mod:`~msabench.runner.rows`: the result rows;
- :mod:`~msabench.runner.execute`: reuse, archive or train, then publish;
- :mod:`~msabench.runner.api`: :func:`run`, the Python API;
- :mod:`~msabench.runner.reopen`: a finished run rebuilt from its directory, to test its checkpoint anew.
"""

from msabench.config.preflight import make_setting
from msabench.runner.api import run
from msabench.runner.checks import check_request
from msabench.runner.execute import execute, execute_prepared
from msabench.runner.prepare import prepare
from msabench.runner.reopen import reopen
from msabench.runner.request import (
    POLICY_CHOICES,
    PreparedRun,
    RunRequest,
    dataset_family,
    resolve_policy_name,
    validation_settings,
)
from msabench.runner.stages import build_final_module, load_checkpoint
from msabench.runner.trainer import quiet_lightning

__all__ = [
    "POLICY_CHOICES",
    "PreparedRun",
    "RunRequest",
    "build_final_module",
    "check_request",
    "dataset_family",
    "execute",
    "execute_prepared",
    "load_checkpoint",
    "make_setting",
    "prepare",
    "quiet_lightning",
    "reopen",
    "resolve_policy_name",
    "run",
    "validation_settings",
]
