"""Handlers of ``msabench sweep`` and ``leaderboard`` (the parser is in cli.py)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msabench.errors import ConfigError, MSABenchError, OutputError

# Each handler imports what it needs inside its body, so that `msabench --help` and the light commands never
# load the torch and Lightning they do not use.


def _rates_leaf(values: list[str] | None) -> object:
    if not values:
        return None
    keyed = [v for v in values if "=" in v]
    if not keyed:
        if len(values) > 1:
            raise ConfigError(
                "give --rates once, or once per protocol as --rates intra=SPEC --rates inter=SPEC"
            )
        return values[0]
    if len(keyed) != len(values):
        raise ConfigError("mix of --rates SPEC and --rates PROTOCOL=SPEC: use one form")
    return {k.strip(): v for k, v in (item.split("=", 1) for item in values)}


def cmd_sweep(args: argparse.Namespace) -> int:
    """Expand the sweep grid, check every job, then run (or list, with --dry-run) the runs."""
    from msabench import sweep as sweeps

    flags = {
        "methods": args.methods,
        "datasets": args.datasets,
        "protocols": args.protocols,
        "rates": _rates_leaf(args.rates),
        "conditions": args.conditions,
        "seeds": args.seeds,
        "train_policy": args.train_policy,
    }
    from msabench.cli.run import max_epochs_override

    text_flags = [f"data.bert_path={args.bert_path}"] if args.bert_path else []
    text_flags += [f"data.text_view={args.text_view}"] if args.text_view else []
    overrides = [*text_flags, *args.overrides, *max_epochs_override(args.max_epochs)]
    spec = _build_spec(args.config, flags, overrides)
    output = args.output or Path(spec.output or "results/runs")
    data_root = args.data_root or os.environ.get("MSABENCH_DATA")
    _preflight(spec, output, data_root)
    workers = args.workers if args.workers is not None else spec.workers or 1
    if workers < 0:
        raise ConfigError(f"--workers must be 0 or more, not {workers}")
    resources = sweeps.Resources(
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        memory_gb=args.memory_gb,
        address=args.address,
        partition=args.partition,
        time_limit_min=args.time_limit,
        max_retries=args.max_retries,
    )
    resources.check()
    jobs = sweeps.expand(spec, data_root=data_root)
    if args.accept_stale:
        jobs = [dataclasses.replace(job, accept_stale=True) for job in jobs]
    _check_jobs(jobs, output)  # a dry run checks all that the sweep would, then only lists
    if args.dry_run:
        print(f"sweep {sweeps.sweep_id(spec.name, jobs)}: {len(jobs)} runs -> {output}")
        for job in jobs:
            print(f"  {job.label}: {', '.join(s.name for s in job.settings)}")
        return 0
    report = sweeps.run_sweep(
        jobs,
        output,
        workers=workers,
        name=spec.name,
        wandb=args.wandb,
        stream=sys.stderr,
        executor=args.executor,
        resources=resources,
    )
    counts = {s: sum(o.status == s for o in report.outcomes) for s in ("finished", "reused", "failed")}
    print(
        f"sweep {report.sweep_id}: {len(jobs)} runs ({counts['finished']} trained, "
        f"{counts['reused']} reused, {counts['failed']} failed) in {report.elapsed_s:.0f} s on "
        f"{report.executor}, {report.workers} at a time x {report.threads} thread(s); results in {output}"
    )
    if report.failures:
        print(f"{len(report.failures)} run(s) failed:", file=sys.stderr)
        for outcome in report.failures:
            where = outcome.log or outcome.run_dir or ""
            print(
                f"  {outcome.label}: {outcome.error}" + (f" (see {where})" if where else ""), file=sys.stderr
            )
        return 1
    print(f"next: msabench leaderboard --results {output} --out {output.parent / 'leaderboard.md'}")
    return 0


def _build_spec(config: str | None, flags: dict[str, Any], overrides: list[str]) -> Any:
    """The sweep spec; a --config that is a directory, binary or not YAML is one line."""
    import yaml

    from msabench import sweep as sweeps

    try:
        return sweeps.build_spec(config, flags, overrides)
    except MSABenchError:
        raise
    except (OSError, ValueError, yaml.YAMLError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"--config {config}: cannot read it as a sweep YAML file ({reason})") from None


def _preflight(spec: Any, output: Path, data_root: str | None) -> None:
    """What can be checked of every run before torch and Lightning load: names, seeds, configs, paths.

    Each (dataset, built-in method) of each grid has its config composed with the sweep's overrides and
    blocks, so a misspelt key or a value out of range is one line in well under a second; a plugin's config
    is checked with every job after torch loads (:func:`_check_jobs`).
    """
    from msabench.config import preflight
    from msabench.config.checks import SEED_MAX
    from msabench.models import known_names

    for grid in spec.grids:
        datasets = [preflight.dataset_name(d, "datasets") for d in grid.datasets]
        for policy in grid.train_policies:
            preflight.policy_name(policy, "train_policy")
        for seed in grid.seeds:
            if not 0 <= seed <= SEED_MAX:
                raise ConfigError(f"seed {seed} is out of range: seeds go from 0 to {SEED_MAX}")
        if "all" in grid.methods:
            methods = known_names()[0]
        else:
            methods = [preflight.method_name(m, "methods") for m in grid.methods]
        for dataset in datasets:
            for method in methods:
                cfg = preflight.compose_config(method, dataset, {}, spec.overrides, spec.blocks)
                if cfg is not None:
                    preflight.check_config_values(cfg)
    preflight.check_data_root(data_root)
    preflight.check_output(output)


def _check_jobs(jobs: Sequence[Any], output: Path) -> None:
    """Every job's config values, before the first job starts (a bad value would fail every run)."""
    from msabench.runner import check_request

    seen: set[tuple[str, str, str, int]] = set()
    for job in jobs:
        key = (job.dataset, job.method, job.train_policy, job.seed)
        if key not in seen:
            seen.add(key)
            check_request(job.request(output))


DEFAULT_REFERENCE = "lf_dnn"


def _reference(text: str | None, tidy: Any) -> str | None:
    """The reference to compare with: one named must have runs (and its policy, if named, too).

    With no ``--reference``, ``lf_dnn`` is the reference where it has runs, and there is none otherwise.
    """
    from msabench.leaderboard import Reference

    if text is None:
        return DEFAULT_REFERENCE if (tidy["method"] == DEFAULT_REFERENCE).any() else None
    if text.strip().lower() in ("", "none"):
        return None
    ref = Reference.parse(text)
    methods = sorted(set(tidy["method"].astype(str)))
    if ref.method not in methods:
        raise ConfigError(
            f"--reference {text}: no runs of method '{ref.method}' in the results; their methods: "
            f"{', '.join(methods)} (or --reference none)"
        )
    if ref.policy is not None:
        policies = sorted(set(tidy.loc[tidy["method"] == ref.method, "train_policy"].astype(str)))
        if ref.policy not in policies:
            raise ConfigError(
                f"--reference {text}: {ref.method} has no runs under policy '{ref.policy}'; its policies: "
                f"{', '.join(policies)}"
            )
    return text


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Aggregate every run under the results roots into the leaderboard files (and plots)."""
    from msabench.core.io import check_results_roots, check_writable_dir

    check_results_roots(args.results)
    check_writable_dir(args.out.expanduser().parent, "--out")
    if args.out.is_dir():
        raise OutputError(f"--out {args.out} is a directory: give a file name such as leaderboard.csv")
    if args.out.suffix not in (".csv", ".md"):
        # The tables are written beside it as <stem>.long.csv ...; another suffix would give lb.txt.csv.
        raise OutputError(
            f"--out {args.out}: give a file name ending in .csv (the tables) or .md (the tables and "
            "Markdown), e.g. leaderboard.csv"
        )
    if args.plots is not None:
        check_writable_dir(args.plots, "--plots")

    from msabench import leaderboard  # pandas and matplotlib: after the checks, which need neither

    fmt = args.format or ("md" if args.out.suffix == ".md" else "csv")
    tidy = leaderboard.load(args.results)
    if tidy.empty:
        raise ConfigError(
            f"no results under {', '.join(map(str, args.results))}: run msabench run or sweep first"
        )
    source = ", ".join(str(r) for r in args.results)
    if args.seeds:
        tidy = leaderboard.select_seeds(tidy, args.seeds)
        source += f" (training seeds {args.seeds})"
    reference = _reference(args.reference, tidy)
    board = leaderboard.build(tidy, reference, pool_across_code=args.pool_across_code)
    written = leaderboard.write(board, args.out, fmt, args.plots, source=source)
    for path in written:
        if path.suffix != ".png":
            print(f"wrote {path}")
    plots = [p for p in written if p.suffix == ".png"]
    if plots:
        print(f"wrote {len(plots)} plots into {args.plots}")
    if len(board.failed):
        print(f"note: {len(board.failed)} failed run(s) are listed, not aggregated", file=sys.stderr)
    for _, entry in board.pooled_code.iterrows():
        print(
            f"note: {entry['method']} ({entry['train_policy']}) on {entry['dataset']} pools runs of "
            f"different code ({entry['versions']}), as --pool-across-code asks; the Markdown marks it",
            file=sys.stderr,
        )
    if args.wandb:
        from msabench.runner import wandb_logging

        wandb_logging.log_leaderboard(board, plots, args.out.parent, source=source)
    return 0
