"""The sweep executors by name: ``--executor NAME`` builds the backend registered under it.

The engines' modules are imported only when their name is asked for (Ray and submitit are optional extras),
and each backend module imports :mod:`msabench.sweep.executors` for the base class, never the other way
round. A backend is a :class:`~msabench.sweep.executors.Backend` subclass built by its ``from_request``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Final

from msabench.core.registry import Registry
from msabench.core.vocabulary import EXECUTORS

if TYPE_CHECKING:
    from msabench.sweep.executors import Backend, Resources

BACKENDS: Final[Registry[type[Backend]]] = Registry("executor")
BACKENDS.add("local", "msabench.sweep.executors:LocalBackend")
BACKENDS.add("ray", "msabench.sweep.ray_executor:RayBackend")
BACKENDS.add("slurm", "msabench.sweep.slurm_executor:SlurmBackend")
# submitit's local executor: the SLURM path on one machine (tests, debugging); not offered by the CLI.
BACKENDS.add("slurm-local", "msabench.sweep.slurm_executor:LocalSlurmBackend")

__all__ = ["BACKENDS", "EXECUTORS", "make_backend"]  # EXECUTORS: the names the command line offers


def make_backend(
    executor: str,
    *,
    workers: int,
    resources: Resources,
    output: Path,
    state: Path,
    factory: Callable[[int, int], Executor] | None = None,
) -> Backend:
    """The backend registered as ``executor``, for this sweep's request.

    Raises:
        UnknownNameError: no executor of that name.
        ConfigError: resources the executor cannot meet.
    """
    from msabench.sweep.executors import BackendRequest

    resources.check()
    backend_cls = BACKENDS.get(executor)
    return backend_cls.from_request(BackendRequest(workers, resources, Path(output), Path(state), factory))
