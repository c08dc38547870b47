"""The Ray executor on a local Ray cluster of several nodes started inside the tests (no GPU needed).

Node ``cpu`` has one CPU; node ``gpu`` has one CPU and one simulated GPU (Ray only counts it). The tests share
the cluster; the last one removes a node.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from msabench import store
from msabench import sweep as sw
from msabench.sweep.ray_executor import slots_for, task_options

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Any:
    head = {"num_cpus": 0, "include_dashboard": False, "_system_config": {"task_oom_retries": 2}}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    nodes = {"cpu": cluster.add_node(num_cpus=1), "gpu": cluster.add_node(num_cpus=1, num_gpus=1)}
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()


def _running_attempts(root: Path) -> list[dict[str, Any]]:
    """The status records of attempts in training (in their staging directories)."""
    found = []
    for folder in store.staging_dirs(root):
        status = store.read_status(folder)
        if status["status"] == "running":
            found.append(status)
    return found


def _watch(root: Path, act: Any, timeout: float = 240.0) -> threading.Thread:
    """Call ``act(status)`` once, on the first attempt seen in training that ``act`` accepts."""

    def loop() -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for status in _running_attempts(root):
                if act(status):
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _one_finished_directory_per_key(root: Path, keys: int) -> None:
    statuses = store.run_statuses(root)
    assert len(statuses) == keys and set(statuses["status"]) == {"finished"}
    assert statuses["run_key"].is_unique
    store.remove_stale_staging(root)
    assert store.staging_dirs(root) == []


def test_options_ask_for_gpus_only_where_the_cluster_has_them() -> None:
    wanted = sw.Resources(cpus_per_run=2, gpus_per_run=0.25, memory_gb=1)
    with_gpus = task_options({"CPU": 16.0, "GPU": 2.0}, wanted)
    assert with_gpus["num_gpus"] == 0.25 and with_gpus["num_cpus"] == 2 and with_gpus["memory"] == 2**30
    assert with_gpus["max_calls"] == 1 and with_gpus["max_retries"] == 2
    assert slots_for({"CPU": 16.0, "GPU": 2.0}, with_gpus) == 8  # 16 CPUs / 2 and 2 GPUs / 0.25
    assert task_options({"CPU": 16.0}, wanted)["num_gpus"] == 0.0
    assert task_options({"CPU": 4.0, "GPU": 1.0}, sw.Resources())["num_gpus"] == 1.0


def test_ray_reuses_local_runs_and_local_reuses_ray_runs(
    small_grid: Any, cluster: Any, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    jobs = small_grid.jobs
    first = sw.run_sweep(jobs[:1], root, workers=0, resources=sw.Resources(cpus_per_run=1))  # local, seed 1
    assert [o.status for o in first.outcomes] == ["finished"]
    on_ray = sw.run_sweep(jobs, root, executor="ray", resources=sw.Resources(cpus_per_run=1, gpus_per_run=0))
    assert [o.status for o in on_ray.outcomes] == ["reused", "finished"]
    assert on_ray.executor == "ray" and all(o.resources == {"CPU": 1.0} for o in on_ray.outcomes)
    status = store.read_status(Path(on_ray.outcomes[1].run_dir))
    assert status["visible_devices"] == "" and status["device"] == "cpu"  # no GPU asked, none shown
    pd.testing.assert_frame_equal(
        small_grid.wide(root), small_grid.leaderboard
    )  # the local executor's leaderboard
    back = sw.run_sweep(jobs, root, workers=0, resources=sw.Resources(cpus_per_run=1))
    assert [o.status for o in back.outcomes] == ["reused", "reused"]


def test_fractional_gpus_pack_runs_on_one_gpu(small_grid: Any, cluster: Any, tmp_path: Path) -> None:
    _, nodes = cluster
    gpu_node = nodes["gpu"].node_id[:8]
    root = tmp_path / "runs"
    packed = sw.run_sweep(
        small_grid.jobs_for("3,4"),
        root,
        executor="ray",
        resources=sw.Resources(cpus_per_run=0.5, gpus_per_run=0.5),
    )
    assert [o.status for o in packed.outcomes] == ["finished", "finished"] and packed.workers == 2
    for outcome in packed.outcomes:
        assert outcome.resources == {"CPU": 0.5, "GPU": 0.5}
        status = store.read_status(Path(outcome.run_dir))
        assert status["node"] == gpu_node and status["visible_devices"] == "0"


def test_a_worker_killed_mid_run_is_retried(small_grid: Any, cluster: Any, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    killed: list[int] = []

    def kill(status: dict[str, Any]) -> bool:
        os.kill(int(status["pid"]), signal.SIGKILL)
        killed.append(int(status["pid"]))
        return True

    watcher = _watch(root, kill)
    report = sw.run_sweep(
        small_grid.jobs[:1], root, executor="ray", resources=sw.Resources(cpus_per_run=1, gpus_per_run=0)
    )
    watcher.join(timeout=1)
    assert len(killed) == 1, "the run was never seen in training"
    assert [o.status for o in report.outcomes] == ["finished"]
    status = store.read_status(Path(report.outcomes[0].run_dir))
    assert status["pid"] != killed[0]  # the retry's results
    _one_finished_directory_per_key(root, keys=1)


def test_runs_of_a_removed_node_finish_elsewhere(small_grid: Any, cluster: Any, tmp_path: Path) -> None:
    ray_cluster, nodes = cluster
    root = tmp_path / "runs"
    cpu_node = nodes["cpu"].node_id[:8]
    removed: list[str] = []

    def remove(status: dict[str, Any]) -> bool:
        if status.get("node") != cpu_node:
            return False
        # A lost node takes its processes with it; here the worker shares this machine and would outlive its
        # raylet, so it is frozen before the removal and killed after it, never publishing.
        pid = int(status["pid"])
        os.kill(pid, signal.SIGSTOP)
        ray_cluster.remove_node(nodes["cpu"], allow_graceful=False)
        os.kill(pid, signal.SIGKILL)
        removed.append(status["attempt"])
        return True

    watcher = _watch(root, remove)
    report = sw.run_sweep(
        small_grid.jobs, root, executor="ray", resources=sw.Resources(cpus_per_run=1, gpus_per_run=0)
    )
    watcher.join(timeout=1)
    assert removed, "no run was seen in training on the node to remove"
    assert [o.status for o in report.outcomes] == ["finished", "finished"]
    statuses = [store.read_status(Path(o.run_dir)) for o in report.outcomes]
    assert {s["node"] for s in statuses} == {nodes["gpu"].node_id[:8]}  # both ended on the surviving node
    # it has a GPU and they asked for none: Ray would leave it visible to them; the executor hides it
    assert {s["visible_devices"] for s in statuses} == {""}
    deadline = time.time() + 60  # its staging directory is stale once its lock is released
    while store.staging_dirs(root) and time.time() < deadline:
        store.remove_stale_staging(root)
        time.sleep(0.5)
    _one_finished_directory_per_key(root, keys=2)
    pd.testing.assert_frame_equal(small_grid.wide(root), small_grid.leaderboard)
    manifest = json.loads((root / sw.STATE_DIR / report.sweep_id / "jobs.json").read_text())
    assert [j["status"] for j in manifest["jobs"]] == ["finished", "finished"]
