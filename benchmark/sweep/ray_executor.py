"""The Ray executor: each run is a Ray task in a fresh worker process, retried by Ray when its process dies.

- ``max_calls=1``: a worker process runs one run and exits, so no state (CUDA context, torch threads, a
  leaked tensor) crosses runs.
- Resources: ``num_cpus`` is the run's torch threads; ``num_gpus`` may be a fraction, which packs several
  small models on one GPU. GPUs are requested only when the cluster reports some: a request the cluster
  cannot meet would wait forever. A task that asked for no GPU is shown none (recent Ray leaves
  ``CUDA_VISIBLE_DEVICES`` alone for such tasks, so they would see every GPU of the node).
- Retries: a worker or node that dies (SIGKILL, the kernel's out-of-memory killer, a lost node) makes Ray run
  the task again, ``max_retries`` times; a task killed by Ray's own memory monitor is retried
  ``task_oom_retries`` times, a cluster setting (unbounded by default) that this executor sets to
  ``max_retries`` on a Ray it starts. Exceptions of the run itself are not retried (the run records them).
  The store's staging directories keep a retry and a still-living first attempt apart.
- Stopping the sweep (Ctrl-C) cancels every task in flight with ``ray.cancel(force=True)``.
- Before anything runs, a probe on every node checks that it writes the results root, that the root takes
  ``flock``, and that it is the driver's (a node-local directory under the same path is not).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from msabench import store
from msabench.core.io import atomic_write
from msabench.errors import ConfigError
from msabench.sweep.executors import THREAD_VARS, Backend, BackendRequest, Resources, Verdict

PROBE_TIMEOUT_S = 120.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray: pip install 'msabench[ray]' (on every node of the cluster)"
        ) from None
    return ray


def task_options(cluster: dict[str, float], resources: Resources) -> dict[str, Any]:
    """The Ray options of one run on a cluster with these total resources.

    GPUs: ``gpus_per_run`` (1 when not given) where the cluster reports GPUs, none where it does not.
    """
    cpus = float(resources.cpus_per_run or 1)
    has_gpus = cluster.get("GPU", 0.0) > 0
    gpus = (1.0 if resources.gpus_per_run is None else float(resources.gpus_per_run)) if has_gpus else 0.0
    options: dict[str, Any] = {
        "num_cpus": cpus,
        "num_gpus": gpus,
        "max_calls": 1,
        "max_retries": resources.max_retries,
        "retry_exceptions": False,
    }
    if resources.memory_gb:
        options["memory"] = int(resources.memory_gb * 2**30)
    return options


def slots_for(cluster: dict[str, float], options: dict[str, Any]) -> int:
    """How many runs the cluster holds at once with these options (at least one)."""
    slots = math.floor(cluster.get("CPU", 0.0) / options["num_cpus"] + 1e-9)
    if options["num_gpus"]:
        slots = min(slots, math.floor(cluster.get("GPU", 0.0) / options["num_gpus"] + 1e-9))
    return max(slots, 1)


def _task(fn: Callable[..., Any], *args: Any) -> Any:
    """One run in a Ray worker: mask GPUs it was not given, threads from its CPUs, note where it ran."""
    import ray

    context = ray.get_runtime_context()
    if not ray.get_gpu_ids():  # torch reads this at its first CUDA call, which comes after
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    threads = args[4]
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ["MSABENCH_NODE"] = context.get_node_id()[:8]
    outcome = fn(*args)
    outcome.resources = {k: float(v) for k, v in context.get_assigned_resources().items()}
    return outcome


def _probe(root: str, token: str) -> str | None:
    return store.check_shared_root(Path(root), token)


class RayBackend(Backend):
    """Runs on a Ray cluster (``address``), or on a Ray instance started here when there is none.

    A Ray session already initialised in this process (a test's cluster, a notebook) is used as it is and
    left running.
    """

    name = "ray"

    @classmethod
    def from_request(cls, request: BackendRequest) -> RayBackend:  # noqa: D102
        return cls(request.resources, request.output)

    def __init__(self, resources: Resources, output: Path) -> None:
        self.resources = resources
        self.output = Path(output)
        self.options: dict[str, Any] = {}
        self.notes: list[str] = []
        self._owns = False
        self._remote: Any = None
        self._refs: dict[Future, Any] = {}

    def start(self) -> None:  # noqa: D102
        ray = _import_ray()
        if not ray.is_initialized():
            starts_here = self.resources.address is None and not os.environ.get("RAY_ADDRESS")
            # Ray retries a task its memory monitor killed without end unless told otherwise; that is a
            # setting of the cluster, so it can be set only on a Ray started here (docs/sweeps.md: on a
            # cluster, start it with RAY_task_oom_retries).
            extra = (
                {"_system_config": {"task_oom_retries": self.resources.max_retries}} if starts_here else {}
            )
            try:
                ray.init(
                    address=self.resources.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    **extra,
                )
            except ConnectionError as err:
                raise ConfigError(
                    f"cannot reach the Ray cluster at {self.resources.address}: {err}; start it "
                    "(ray start --head) or fix --address"
                ) from None
            self._owns = True
        cluster = {k: float(v) for k, v in ray.cluster_resources().items()}
        self.options = task_options(cluster, self.resources)
        if self.resources.gpus_per_run and not self.options["num_gpus"]:
            self.notes.append(
                f"the cluster reports no GPU: runs ask for none (not {self.resources.gpus_per_run:g})"
            )
        self.slots = slots_for(cluster, self.options)
        self.threads = max(1, int(self.options["num_cpus"]))
        self._check_nodes(ray)
        options = dict(self.options)
        self._remote = ray.remote(max_calls=options.pop("max_calls"))(_task).options(**options)

    def _check_nodes(self, ray: Any) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        token = secrets.token_hex(8)
        atomic_write(self.output / ".sweeps" / "shared-check", token)
        probe = ray.remote(num_cpus=0)(_probe)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        refs = [
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
                str(self.output), token
            )
            for node in nodes
        ]
        problems = [p for p in ray.get(refs, timeout=PROBE_TIMEOUT_S) if p]
        if problems:
            more = f" (and {len(problems) - 1} more node(s))" if len(problems) > 1 else ""
            raise ConfigError(problems[0] + more)

    def submit_many(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Future]:  # noqa: D102
        futures = []
        for args in calls:
            ref = self._remote.remote(fn, *args)
            future = ref.future()
            self._refs[future] = ref
            future.add_done_callback(lambda f: self._refs.pop(f, None))
            futures.append(future)
        return futures

    def verdict(self, err: BaseException) -> tuple[Verdict, str]:  # noqa: D102
        ray = _import_ray()
        if isinstance(err, ray.exceptions.RayError):  # Ray retried already: that was the last attempt
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            return "failed", f"{type(err).__name__} after {self.resources.max_retries} retries: {first}"[:300]
        return super().verdict(err)

    def stop(self) -> None:  # noqa: D102
        ray = _import_ray()
        for ref in list(self._refs.values()):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001, S110 - finished meanwhile
                pass
        self.close()

    def close(self) -> None:  # noqa: D102
        if self._owns:
            _import_ray().shutdown()
            self._owns = False
