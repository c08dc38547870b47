"""The ``msabench`` command line: run, list, check, data export, sweep and leaderboard."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from msabench.core.vocabulary import TEXT_VIEW_CHOICES
from msabench.errors import ConfigError, DataWarning, MSABenchError, OutputError, PluginWarning

# Each command imports what it needs inside its handler (runner, models, data, sweeps, pandas), so that
# `msabench --help`, `list` or `leaderboard` never load the torch and Lightning they do not use.

SEED_RANGE = "0 to 4294967295"  # numpy's and Lightning's seeding (msabench.config_checks.SEED_MAX)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a user error prints one line and exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return int(args.handler(args) or 0)
        except MSABenchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130


_default_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Data warnings as one ``warning:`` line each (the run records them too); others as Python shows them."""
    if issubclass(category, DataWarning | PluginWarning):
        print(f"warning: {message}", file=file or sys.stderr)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where to find the usage, no usage block."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="msabench", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="train one method, select on validation, test one setting")
    run.add_argument("--method", required=True, help="method name (see `msabench list`)")
    run.add_argument("--protocol", required=True, help="intra (steps dropped) or inter (whole modalities)")
    run.add_argument(
        "--rate", type=float, help="missing rate: intra in [0, 1], inter (sample-level MR) in [0, 2/3]"
    )
    run.add_argument(
        "--condition", help="with --protocol inter: the available modalities, letters t/a/v (e.g. ta)"
    )
    _add_common(run)
    run.add_argument("--seed", type=int, help="training seed (default: the config's, 1111)")
    run.add_argument(
        "--rerun", action="store_true", help="train again even if this exact run already finished"
    )
    run.add_argument(
        "--wandb",
        action="store_true",
        default=None,
        help="log to Weights & Biases (offline into the run directory without credentials)",
    )
    run.set_defaults(handler=_cmd_run)

    lst = sub.add_parser("list", help="registered methods, datasets, protocols and training policies")
    lst.set_defaults(handler=_cmd_list)

    check = sub.add_parser(
        "check",
        help="run the generic every-method checks against one method (a plugin's too)",
        description="The checks the test suite runs for every method: one training batch under every "
        "protocol, policy and task, and nothing a protocol removes reaches a prediction. Prints PASS or FAIL "
        "for each; exit status 1 when one fails.",
    )
    check.add_argument("--method", required=True, help="method name (see `msabench list`)")
    check.add_argument(
        "--only",
        help="comma-separated checks or groups: protocol, policy, task, no_leak, stored_view_leaks, "
        "or a full name such as no_leak[synthetic] (default: all)",
    )
    check.add_argument(
        "--output", type=Path, help="keep the checks' runs here (default: a temporary directory, removed)"
    )
    check.add_argument("--traceback", action="store_true", help="print the traceback of a check that errs")
    check.set_defaults(handler=_cmd_check)

    data = sub.add_parser("data", help="dataset utilities")
    data_sub = data.add_subparsers(dest="data_command")
    export = data_sub.add_parser("export", help="write a synthetic dataset as an MMSA pickle")
    export.add_argument("name", help="synthetic, synthetic-mosei, synthetic-sims or synthetic-iemocap")
    export.add_argument("--out", required=True, type=Path, help="output .pkl path")
    export.add_argument("--seed", type=int, default=0, help="generator seed (default 0, the suite's data)")
    export.set_defaults(handler=_cmd_export)
    _add_sweep_parsers(sub)
    return parser


def _add_text_view(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bert-path",
        help="local BERT the stored text features were made with (bert-base-uncased for MOSI/MOSEI, "
        "bert-base-chinese for SIMS): re-encodes the text where a protocol drops tokens",
    )
    parser.add_argument(
        "--text-view",
        choices=TEXT_VIEW_CHOICES,
        help="auto (default): re-encode contextual text where tokens are dropped, refuse without an encoder; "
        "stored: keep the stored features (leaks the dropped words)",
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="synthetic", help="dataset name (default: synthetic)")
    parser.add_argument("--data-path", help="a data file (an MMSA .pkl, or the IEMOCAP feature root)")
    parser.add_argument(
        "--data-root", help="directory with the datasets in MMSA's layout (or set MSABENCH_DATA)"
    )
    parser.add_argument(
        "--train-policy",
        default="paper",
        help="complete, matched, lnln, conditions, stochastic, or paper (the method's own; default)",
    )
    parser.add_argument(
        "--output", default="results/runs", type=Path, help="results root (default results/runs)"
    )
    _add_text_view(parser)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. trainer.max_epochs=2")


def _cmd_run(args: argparse.Namespace) -> int:
    from msabench.models import canonical_name
    from msabench.runner import RunRequest, execute, make_setting

    setting = make_setting(args.protocol, args.rate, args.condition)
    request = RunRequest(
        method=canonical_name(args.method),
        settings=[setting],
        dataset=args.dataset,
        train_policy=args.train_policy,
        seed=args.seed,
        data_path=args.data_path,
        data_root=args.data_root or os.environ.get("MSABENCH_DATA"),
        bert_path=args.bert_path,
        text_view=args.text_view,
        overrides=args.overrides,
        output=args.output,
        rerun=args.rerun,
        wandb=args.wandb,
    )
    frame = execute(request)
    print(format_table(frame))
    return 0


def format_table(frame) -> str:  # noqa: ANN001 - pandas imported lazily
    """A readable table: one row per test setting, metrics in the field's units (percent for accuracy/F1)."""
    from msabench.metrics import is_percent_metric

    head = frame.iloc[0]
    lines = [
        f"{head['method']} on {head['dataset']} | policy {head['train_policy']} | seed {head['seed']} | "
        f"selected {head['selection']} at epoch {head['ckpt_epoch']} of {head['epochs']} | "
        f"{head['params']} params | {float(head['wall_time_s']):.1f} s",
    ]
    table = frame.pivot_table(index="setting", columns="metric", values="value", sort=False)
    order = [m for m in frame["metric"].drop_duplicates() if m in table.columns]
    table = table[order]
    cells = [["setting", *[f"{m}{' (%)' if is_percent_metric(m) else ''}" for m in order]]]
    for setting, row in table.iterrows():
        cells.append(
            [
                str(setting),
                *[f"{100 * row[m]:.2f}" if is_percent_metric(m) else f"{row[m]:.3f}" for m in order],
            ]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for r in cells:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    if frame.attrs.get("run_dir"):
        cached = (
            " (a finished run with the same key: reused; --rerun trains again)"
            if frame.attrs.get("cached")
            else ""
        )
        lines.append(f"run directory: {frame.attrs['run_dir']}{cached}")
    return "\n".join(line for line in lines if line)


def _cmd_list(args: argparse.Namespace) -> int:
    from msabench.core.vocabulary import POLICY_CHOICES
    from msabench.datamodules import DATASETS
    from msabench.models import get, names, origin

    methods = names()  # before the header: a plugin that failed to load is reported first
    print("methods:")
    for name in methods:
        plugin = f"  (plugin: {origin(name)})" if origin(name) else ""
        print(f"  {name:<12} paper policy: {get(name).paper_policy}{plugin}")
    print("datasets:  " + ", ".join(DATASETS))
    print("protocols: intra (--rate 0..1), inter (--rate 0..2/3, or --condition t/a/v/ta/tv/av/tav)")
    print("policies:  " + ", ".join(POLICY_CHOICES))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    import tempfile
    import time
    import traceback

    from msabench.errors import UnknownNameError
    from msabench.models import canonical_name, origin
    from msabench.testing import checks

    method = canonical_name(args.method)
    todo = checks(method)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        valid = {c.name for c in todo} | {c.group for c in todo}
        for w in wanted:
            if w not in valid:
                raise UnknownNameError("check", w, valid)
        todo = [c for c in todo if c.name in wanted or c.group in wanted]
    plugin = origin(method)
    print(f"checking {method}" + (f" (plugin: {plugin})" if plugin else "") + f": {len(todo)} checks")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="msabench-check-") as scratch:
        root = args.output or Path(scratch)
        for check in todo:
            started = time.time()
            try:
                check.run(root / check.name.replace("[", "_").replace("]", "").replace(":", "-"))
            except Exception as err:  # noqa: BLE001 - a failing method is reported, and the next check runs
                failed += 1
                message = str(err).strip().splitlines()[0] if str(err).strip() else ""
                what = message if isinstance(err, AssertionError) else f"{type(err).__name__}: {message}"
                print(f"FAIL  {check.name}  ({time.time() - started:.1f} s): {what}", flush=True)
                if args.traceback:
                    traceback.print_exc()
            else:
                print(f"PASS  {check.name}  ({time.time() - started:.1f} s)", flush=True)
    print(f"{len(todo) - failed} passed, {failed} failed" + (" (--traceback shows where)" if failed else ""))
    return 1 if failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from msabench.datamodules import export_synthetic
    from msabench.datamodules.synthetic import encoder_dir
    from msabench.results import check_writable_dir

    if not 0 <= args.seed <= 2**32 - 1:
        raise ConfigError(f"--seed must be from {SEED_RANGE}, not {args.seed}")
    out = args.out.expanduser()
    check_writable_dir(out if out.is_dir() else out.parent, "--out")
    path = export_synthetic(args.name, out, seed=args.seed)
    print(f"wrote {path}")
    if encoder_dir(path).is_dir():
        print(f"text encoder: {encoder_dir(path)} (the text was made by it; --bert-path DIR reads it)")
    return 0


def _add_sweep_parsers(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="a grid of methods x datasets x policies x seeds x test settings: resumable, parallel",
        description="Train once per (dataset, method, training policy, seed) and test that checkpoint on "
        "every setting of the grid (the matched policy trains one model per setting). Finished runs are "
        "reused; runs interrupted at any point are redone. Flags replace the same leaves of every grid in "
        "--config.",
    )
    sweep.add_argument(
        "--config", help="a preset (quick, synthetic, mosi, mosei, sims, iemocap) or a sweep YAML"
    )
    sweep.add_argument("--methods", help="comma-separated method names, or all")
    sweep.add_argument("--datasets", help="comma-separated dataset names (default synthetic)")
    sweep.add_argument(
        "--protocols", help="intra, inter or intra,inter (default: those the rates/conditions imply)"
    )
    sweep.add_argument(
        "--rates",
        action="append",
        metavar="[PROTOCOL=]SPEC",
        help="0.0:0.9:0.1 (start:stop:step) or 0,0.3,0.5 for every protocol; repeat as "
        "intra=0:0.9:0.1 --rates inter=0:0.6:0.1 for one per protocol",
    )
    sweep.add_argument("--conditions", help="available modalities for inter, e.g. t,a,v,ta,tv,av,tav, or all")
    sweep.add_argument("--seeds", help="training seeds: 1111,1112,1113 or 1111:1113 (default: the config's)")
    sweep.add_argument(
        "--train-policy", help="a policy name (or a comma list), or paper for each method's own"
    )
    sweep.add_argument(
        "--workers", type=int, help="runs at once, each in its own process (default 1; 0 = inline)"
    )
    sweep.add_argument(
        "--executor",
        choices=("local", "ray", "slurm"),
        default="local",
        help="where the runs go: local processes (default), a Ray cluster, or SLURM (through submitit)",
    )
    sweep.add_argument(
        "--cpus-per-run",
        type=float,
        help="cores (torch threads) per run (default: local: cores // workers; 1)",
    )
    sweep.add_argument(
        "--gpus-per-run",
        type=float,
        help="GPUs per run, a fraction packs runs on one GPU (0.25: four); 0 hides the GPUs (default: 1 "
        "where there are GPUs)",
    )
    sweep.add_argument("--memory-gb", type=float, help="memory per run (Ray, SLURM)")
    sweep.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)")
    sweep.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    sweep.add_argument(
        "--time-limit", type=int, default=240, help="SLURM time limit of one run, minutes (default 240)"
    )
    sweep.add_argument(
        "--max-retries",
        type=int,
        default=2,
        help="retries of a run whose worker or node died (Ray, default 2)",
    )
    sweep.add_argument("--output", type=Path, help="results root (default: the preset's, else results/runs)")
    sweep.add_argument(
        "--data-root", help="directory with the datasets in MMSA's layout (or set MSABENCH_DATA)"
    )
    sweep.add_argument(
        "--wandb", action="store_true", default=None, help="log every run to W&B, grouped by sweep"
    )
    sweep.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    _add_text_view(sweep)
    sweep.add_argument(
        "overrides", nargs="*", help="key=value overrides for every run, e.g. trainer.max_epochs=5"
    )
    sweep.set_defaults(handler=_cmd_sweep)

    board = sub.add_parser("leaderboard", help="aggregate every run under a results directory")
    board.add_argument(
        "--results", required=True, type=Path, nargs="+", help="results root(s) of runs and sweeps"
    )
    board.add_argument(
        "--out", required=True, type=Path, help="the wide CSV (tidy .long.csv and .summary.csv beside)"
    )
    board.add_argument(
        "--format", choices=("csv", "md"), help="md also writes Markdown tables (default: from --out)"
    )
    board.add_argument(
        "--reference",
        default="lf_dnn",
        help="method (or METHOD:POLICY) for paired comparisons and effective robustness; none: off",
    )
    board.add_argument(
        "--seeds", help="aggregate only these training seeds (1111,1112 or 1111:1113), e.g. the finished ones"
    )
    board.add_argument("--plots", type=Path, help="write PNG plots into this directory")
    board.add_argument("--wandb", action="store_true", help="log the leaderboard and plots to W&B")
    board.set_defaults(handler=_cmd_leaderboard)


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


def _cmd_sweep(args: argparse.Namespace) -> int:
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
    from msabench.results import check_writable_dir

    text_flags = [f"data.bert_path={args.bert_path}"] if args.bert_path else []
    text_flags += [f"data.text_view={args.text_view}"] if args.text_view else []
    spec = _build_spec(args.config, flags, [*text_flags, *args.overrides])
    output = args.output or Path(spec.output or "results/runs")
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
    jobs = sweeps.expand(spec, data_root=args.data_root or os.environ.get("MSABENCH_DATA"))
    if not args.dry_run:
        check_writable_dir(output, "--output")
        _check_jobs(jobs, output)
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


def _check_jobs(jobs: Sequence[Any], output: Path) -> None:
    """Every job's config values, before the first job starts (a bad value would fail every run)."""
    from msabench.runner import check_request

    seen: set[tuple[str, str, str, int]] = set()
    for job in jobs:
        key = (job.dataset, job.method, job.train_policy, job.seed)
        if key not in seen:
            seen.add(key)
            check_request(job.request(output))


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from msabench import leaderboard
    from msabench.results import check_writable_dir

    check_writable_dir(args.out.expanduser().parent, "--out")
    if args.out.is_dir():
        raise OutputError(f"--out {args.out} is a directory: give a file name such as leaderboard.csv")
    if args.plots is not None:
        check_writable_dir(args.plots, "--plots")

    fmt = args.format or ("md" if args.out.suffix == ".md" else "csv")
    reference = None if args.reference.strip().lower() in ("", "none") else args.reference
    tidy = leaderboard.load(args.results)
    if tidy.empty:
        raise ConfigError(
            f"no results under {', '.join(map(str, args.results))}: run msabench run or sweep first"
        )
    source = ", ".join(str(r) for r in args.results)
    if args.seeds:
        tidy = leaderboard.select_seeds(tidy, args.seeds)
        source += f" (training seeds {args.seeds})"
    board = leaderboard.build(tidy, reference)
    written = leaderboard.write(board, args.out, fmt, args.plots, source=source)
    for path in written:
        if path.suffix != ".png":
            print(f"wrote {path}")
    plots = [p for p in written if p.suffix == ".png"]
    if plots:
        print(f"wrote {len(plots)} plots into {args.plots}")
    if len(board.failed):
        print(f"note: {len(board.failed)} failed run(s) are listed, not aggregated", file=sys.stderr)
    if args.wandb:
        from msabench import wandb_logging

        wandb_logging.log_leaderboard(board, plots, args.out.parent, source=source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
