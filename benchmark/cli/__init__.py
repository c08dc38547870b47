"""The ``msabench`` command line: run, list, check, data export, sweep and leaderboard."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import NoReturn, TextIO

from msabench.cli.run import cmd_check, cmd_export, cmd_list, cmd_run
from msabench.cli.sweep import cmd_leaderboard, cmd_sweep
from msabench.core.messages import show_messages
from msabench.core.signals import Interrupted, stop_on_signals
from msabench.core.vocabulary import EXECUTORS, TEXT_VIEW_CHOICES
from msabench.errors import DataWarning, MSABenchError, PluginWarning

# The parser and the error handling live here; the handlers in cli_run.py (run, list, check, data export)
# and cli_sweep.py (sweep, leaderboard). Each handler imports what it needs inside its body (runner, models,
# data, sweeps, pandas), so that `msabench --help`, `list` or `leaderboard` never load the torch and
# Lightning they do not use.


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a user error prints one line and exits with status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    with warnings.catch_warnings(), stop_on_signals():
        warnings.showwarning = _show_warning
        show_messages()
        try:
            return int(args.handler(args) or 0)
        except MSABenchError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except Interrupted as stop:
            print(_interrupted_line(stop, args.command), file=sys.stderr)
            return stop.exit_status


def _interrupted_line(stop: Interrupted, command: str) -> str:
    """One line: what the stop kept, and that the same command carries on from there."""
    if stop.kept:
        return f"{stop}: kept {'; '.join(stop.kept)}. Run the same command again to resume from there"
    if command in ("run", "sweep"):
        return f"{stop} before a training epoch finished: nothing to resume; the same command starts afresh"
    return str(stop)


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


def _path(text: str) -> Path:
    """A path flag's value; an empty one is refused (``Path("")`` is the current directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: give a path (use . for the current directory)")
    return Path(text)


def _rate(text: str) -> float:
    """A rate: a decimal (``0.3``) or a fraction (``2/3``, the inter protocol's bound)."""
    try:
        if "/" in text:
            numerator, denominator = text.split("/")
            return float(Fraction(int(numerator), int(denominator)))
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number (e.g. 0.3 or 2/3)") from None


def _epochs(text: str) -> int:
    """An epoch count of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer >= 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="msabench", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="train one method, select on validation, test one setting")
    run.add_argument("--method", required=True, help="method name (see `msabench list`)")
    run.add_argument("--protocol", required=True, help="intra (steps dropped) or inter (whole modalities)")
    run.add_argument(
        "--rate",
        type=_rate,
        help="missing rate: intra in [0, 1], inter (sample-level MR) in [0, 2/3] (a fraction such as 2/3 "
        "is read exactly)",
    )
    run.add_argument(
        "--condition", help="with --protocol inter: the available modalities, letters t/a/v (e.g. ta)"
    )
    _add_common(run)
    run.add_argument("--seed", type=int, help="training seed (default: the config's, 1111)")
    run.add_argument(
        "--rerun", action="store_true", help="train again even if this exact run already finished"
    )
    _add_accept_stale(run)
    run.add_argument(
        "--wandb",
        action="store_true",
        default=None,
        help="log to Weights & Biases (offline into the run directory without credentials)",
    )
    run.set_defaults(handler=cmd_run)

    lst = sub.add_parser(
        "list",
        help="registered methods, datasets, protocols and training policies; `list keys`: config keys",
    )
    lst.add_argument(
        "what",
        nargs="?",
        choices=("names", "keys"),
        default="names",
        help="names (default): methods, datasets, protocols, policies; keys: every config key an override "
        "may set, with its value",
    )
    lst.add_argument("--method", help="with keys: the method whose config to list (default lf_dnn)")
    lst.add_argument("--dataset", default="synthetic", help="with keys: the dataset (default synthetic)")
    lst.set_defaults(handler=cmd_list)

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
        "--output", type=_path, help="keep the checks' runs here (default: a temporary directory, removed)"
    )
    check.add_argument("--traceback", action="store_true", help="print the traceback of a check that errs")
    check.set_defaults(handler=cmd_check)

    data = sub.add_parser("data", help="dataset utilities")
    data_sub = data.add_subparsers(dest="data_command")
    export = data_sub.add_parser("export", help="write a synthetic dataset as an MMSA pickle")
    export.add_argument("name", help="synthetic, synthetic-mosei, synthetic-sims or synthetic-iemocap")
    export.add_argument("--out", required=True, type=_path, help="output .pkl path")
    export.add_argument("--seed", type=int, default=0, help="generator seed (default 0, the suite's data)")
    export.set_defaults(handler=cmd_export)
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


def _add_accept_stale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-stale",
        action="store_true",
        help="reuse a finished run although other code made it (its code fingerprint differs from today's, "
        "or it records none); without it such a run is trained again, the old one kept (docs/provenance.md)",
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
        "--output", default="results/runs", type=_path, help="results root (default results/runs)"
    )
    _add_max_epochs(parser)
    _add_text_view(parser)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. trainer.max_epochs=2")


def _add_max_epochs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-epochs",
        type=_epochs,
        metavar="N",
        help="cap every training stage at N epochs, for a quick try (trainer.max_epochs caps only the "
        "stages without a cap of their own: not the first of IF-MMIN and MMIN); the override "
        "trainer.max_epochs_all=N",
    )


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
        choices=EXECUTORS,
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
    sweep.add_argument("--output", type=_path, help="results root (default: the preset's, else results/runs)")
    sweep.add_argument(
        "--data-root", help="directory with the datasets in MMSA's layout (or set MSABENCH_DATA)"
    )
    sweep.add_argument(
        "--wandb", action="store_true", default=None, help="log every run to W&B, grouped by sweep"
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="check everything the sweep checks, list the runs and exit"
    )
    _add_accept_stale(sweep)
    _add_max_epochs(sweep)
    _add_text_view(sweep)
    sweep.add_argument(
        "overrides", nargs="*", help="key=value overrides for every run, e.g. trainer.max_epochs=5"
    )
    sweep.set_defaults(handler=cmd_sweep)

    board = sub.add_parser("leaderboard", help="aggregate every run under a results directory")
    board.add_argument(
        "--results", required=True, type=_path, nargs="+", help="results root(s) of runs and sweeps"
    )
    board.add_argument(
        "--out",
        required=True,
        type=_path,
        help="the wide CSV, ending in .csv (tidy .long.csv and .summary.csv beside), or .md for Markdown too",
    )
    board.add_argument(
        "--format", choices=("csv", "md"), help="md also writes Markdown tables (default: from --out)"
    )
    board.add_argument(
        "--reference",
        help="method (or METHOD:POLICY) for paired comparisons and effective robustness, which must have "
        "runs; none: off (default: lf_dnn where it has runs)",
    )
    board.add_argument(
        "--seeds", help="aggregate only these training seeds (1111,1112 or 1111:1113), e.g. the finished ones"
    )
    board.add_argument("--plots", type=_path, help="write PNG plots into this directory")
    board.add_argument(
        "--pool-across-code",
        action="store_true",
        help="pool an entry's runs although different code made them (different code fingerprints); "
        "the Markdown then names each such entry (docs/provenance.md)",
    )
    board.add_argument("--wandb", action="store_true", help="log the leaderboard and plots to W&B")
    board.set_defaults(handler=cmd_leaderboard)
