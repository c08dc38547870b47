"""Measure the speed-up of parallel sweep workers: the same sweep run from scratch with 1, 2, ... workers.

Each worker count gets a fresh output directory, so every run is trained (nothing reused). With N workers each
process gets ``cores // N`` torch threads, so the comparison is one process using every core against N
processes sharing them::

    python -m msabench.tools.bench_sweep --config quick --workers 1 2
    python -m msabench.tools.bench_sweep --config quick --methods lf_dnn,mmin --workers 1 2 --json out.json

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
    config: str, workers: Sequence[int], flags: dict, overrides: Sequence[str], keep: Path | None
) -> list[dict]:
    """Run the sweep once per worker count; returns one record per count (wall time, runs, failures)."""
    spec = sweeps.build_spec(config, flags, overrides)
    jobs = sweeps.expand(spec)
    records = []
    for count in workers:
        root = (
            Path(keep) / f"workers-{count}"
            if keep
            else Path(tempfile.mkdtemp(prefix=f"msabench-bench-{count}-"))
        )
        if root.exists() and any(root.iterdir()):
            shutil.rmtree(root)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        started = time.time()
        report = sweeps.run_sweep(jobs, root, workers=count, name=spec.name, stream=sys.stderr)
        wall = time.time() - started
        records.append(
            {
                "workers": count,
                "threads_per_worker": report.threads,
                "runs": len(jobs),
                "failed": len(report.failures),
                "wall_s": wall,
                "run_wall_s_sum": sum(o.wall_s for o in report.outcomes),
                "load_before": load,
                "cores": sweeps.available_cores(),
            }
        )
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    base = records[0]["wall_s"]
    for record in records:
        record["speedup"] = base / record["wall_s"]
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m msabench.tools.bench_sweep --config quick --workers 1 2``."""
    parser = argparse.ArgumentParser(
        prog="python -m msabench.tools.bench_sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default="quick", help="sweep preset or YAML (default quick)")
    parser.add_argument("--methods", help="restrict the methods (comma-separated)")
    parser.add_argument("--seeds", help="replace the seeds")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--keep", type=Path, help="keep each count's runs under this directory")
    parser.add_argument("--json", type=Path, help="also write the records as JSON")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run")
    args = parser.parse_args(argv)
    try:
        records = measure(
            args.config,
            args.workers,
            {"methods": args.methods, "seeds": args.seeds},
            args.overrides,
            args.keep,
        )
    except MSABenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{'workers':>7} {'threads':>7} {'runs':>5} {'failed':>6} {'wall s':>8} {'speed-up':>8} {'load':>5}"
    )
    for r in records:
        print(
            f"{r['workers']:>7} {r['threads_per_worker']:>7} {r['runs']:>5} {r['failed']:>6} "
            f"{r['wall_s']:>8.1f} {r['speedup']:>7.2f}x {r['load_before']:>5.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
