"""Measure the overhead of the Ray executor against the local one: the same sweep, from scratch, on each.

Both get the same parallelism and threads per run (``--workers N`` local processes with ``cores // N`` threads
against a Ray instance started here with every core and ``--cpus-per-run cores // N``), fresh output
directories and nothing reused, so the difference is what Ray adds: starting the instance, a fresh worker
process per run (``max_calls=1``: torch and Lightning imported again for every run), the shared-root probe::

    python -m msabench.tools.bench_executors --config quick --workers 2
    python -m msabench.tools.bench_executors --config quick --methods lf_dnn --limit 2 --workers 2  # 2 runs

Other processes on the machine distort the numbers: report the load along with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from msabench import sweep as sweeps
from msabench.errors import MSABenchError


def measure(
    config: str, flags: dict, overrides: Sequence[str], workers: int, limit: int | None
) -> dict[str, float | int]:
    """Run the sweep on the local executor, then on Ray; returns wall times, runs and failures."""
    spec = sweeps.build_spec(config, flags, overrides)
    jobs = sweeps.expand(spec)[:limit]
    threads = max(1, sweeps.available_cores() // max(workers, 1))
    record: dict[str, float | int] = {
        "runs": len(jobs),
        "workers": workers,
        "threads_per_run": threads,
        "load_before": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
    }
    for executor in ("local", "ray"):
        root = Path(tempfile.mkdtemp(prefix=f"msabench-bench-{executor}-"))
        started = time.time()
        if executor == "ray":
            import ray

            ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
        try:
            report = sweeps.run_sweep(
                jobs,
                root,
                workers=workers,
                name=spec.name,
                stream=sys.stderr,
                executor=executor,
                resources=sweeps.Resources(cpus_per_run=threads, gpus_per_run=0),
            )
        finally:
            if executor == "ray":
                ray.shutdown()
        record[f"{executor}_s"] = time.time() - started
        record[f"{executor}_failed"] = len(report.failures)
        record[f"{executor}_run_wall_s_sum"] = sum(o.wall_s for o in report.outcomes)
        shutil.rmtree(root, ignore_errors=True)
    record["ratio"] = float(record["ray_s"]) / float(record["local_s"])
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m msabench.tools.bench_executors --config quick --workers 2``."""
    parser = argparse.ArgumentParser(
        prog="python -m msabench.tools.bench_executors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default="quick", help="sweep preset or YAML (default quick)")
    parser.add_argument("--methods", help="restrict the methods (comma-separated)")
    parser.add_argument("--seeds", help="replace the seeds")
    parser.add_argument("--limit", type=int, help="only the first N runs of the sweep (a cut, say so)")
    parser.add_argument("--workers", type=int, default=2, help="runs at once on both executors (default 2)")
    parser.add_argument("--json", type=Path, help="also write the record as JSON")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run")
    args = parser.parse_args(argv)
    try:
        record = measure(
            args.config,
            {"methods": args.methods, "seeds": args.seeds},
            args.overrides,
            args.workers,
            args.limit,
        )
    except MSABenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{'runs':>5} {'workers':>7} {'threads':>7} {'local s':>8} {'ray s':>8} {'ray/local':>9} {'load':>5}"
    )
    print(
        f"{record['runs']:>5} {record['workers']:>7} {record['threads_per_run']:>7} "
        f"{record['local_s']:>8.1f} {record['ray_s']:>8.1f} {record['ratio']:>8.2f}x "
        f"{record['load_before']:>5.2f}"
    )
    if record["local_failed"] or record["ray_failed"]:
        print(f"failed runs: local {record['local_failed']}, ray {record['ray_failed']}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
