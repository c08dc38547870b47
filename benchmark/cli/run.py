"""Handlers of ``msabench run``, ``list``, ``check`` and ``data export`` (the parser is in cli.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from msabench.errors import ConfigError

# Each handler imports what it needs inside its body, so that `msabench --help` and the light commands never
# load the torch and Lightning they do not use.

SEED_RANGE = "0 to 4294967295"  # numpy's and Lightning's seeding (msabench.config.checks.SEED_MAX)


def cmd_run(args: argparse.Namespace) -> int:
    """Train, select and test one setting; print the result table."""
    from msabench.config import preflight

    data_root = args.data_root or os.environ.get("MSABENCH_DATA")
    overrides = [*args.overrides, *max_epochs_override(args.max_epochs)]
    flags = preflight.config_flags(
        args.seed, args.data_path, data_root, args.bert_path, args.text_view, args.wandb
    )
    # Names, ranges, paths and config keys first: a mistake is one line before torch and Lightning load.
    method, setting, output = preflight.check_run(
        method=args.method,
        protocol=args.protocol,
        rate=args.rate,
        condition=args.condition,
        dataset=args.dataset,
        train_policy=args.train_policy,
        data_path=args.data_path,
        data_root=data_root,
        output=args.output,
        flags=flags,
        overrides=overrides,
    )
    from msabench.runner import RunRequest, execute

    request = RunRequest(
        method=method,
        settings=[setting],
        dataset=args.dataset,
        train_policy=args.train_policy,
        seed=args.seed,
        data_path=args.data_path,
        data_root=data_root,
        bert_path=args.bert_path,
        text_view=args.text_view,
        overrides=overrides,
        output=output,
        rerun=args.rerun,
        accept_stale=args.accept_stale,
        wandb=args.wandb,
    )
    frame = execute(request)
    print(format_table(frame))
    return 0


def max_epochs_override(max_epochs: int | None) -> list[str]:
    """``--max-epochs N`` as its override (every stage capped at N epochs), or none."""
    from msabench.config import EPOCH_CAP_KEY

    return [f"{EPOCH_CAP_KEY}={max_epochs}"] if max_epochs is not None else []


def format_table(frame) -> str:  # noqa: ANN001 - pandas imported lazily
    """A readable table: one row per test setting, metrics in the field's units (percent for accuracy/F1)."""
    from msabench.metrics import is_percent_metric

    head = frame.iloc[0]
    lines = [
        f"{head['method']} on {head['dataset']} | policy {head['train_policy']} | seed {head['seed']} | "
        f"selected {head['selection']} {_epochs_text(head, frame.attrs.get('run_dir'))} | "
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
    if frame.attrs.get("stale"):
        lines.append(str(frame.attrs["stale"]))
    return "\n".join(line for line in lines if line)


def _epochs_text(head, run_dir: str | None) -> str:  # noqa: ANN001 - a pandas row
    """Where the checkpoint was selected: ``at epoch 7 of 8``, or per stage for a multi-stage run.

    The rows hold the last stage's epochs; the run's ``status.json`` holds every stage's (``stages``).
    """
    import json

    stages: list[dict] = []
    if run_dir:
        try:
            stages = json.loads((Path(run_dir) / "status.json").read_text()).get("stages") or []
        except (OSError, ValueError, AttributeError):
            stages = []
    if len(stages) < 2:
        return f"at epoch {head['ckpt_epoch']} of {head['epochs']}"
    return "in each stage: " + ", ".join(
        f"{s.get('name')} at epoch {s.get('ckpt_epoch')} of {s.get('epochs')}" for s in stages
    )


def cmd_list(args: argparse.Namespace) -> int:
    """Print the registered methods, datasets, protocols and training policies (or a config's keys)."""
    if args.what == "keys":
        return _list_keys(args.method or "lf_dnn", args.dataset)
    if args.method:
        raise ConfigError("--method goes with `msabench list keys`")
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
    print("config keys: msabench list keys [--method NAME]")
    return 0


def _list_keys(method: str, dataset: str) -> int:
    """Every key a ``key=value`` override may set, with its value in the method's composed config."""
    from omegaconf import DictConfig, OmegaConf

    from msabench.config import EPOCH_CAP_KEY, FREE_FORM_BLOCKS, preflight

    method, dataset = preflight.method_name(method, "--method"), preflight.dataset_name(dataset, "--dataset")
    cfg = preflight.compose_config(method, dataset)
    if cfg is None:  # a plugin: its config is found through its class
        from msabench.runner import RunRequest
        from msabench.runner.request import compose

        cfg = compose(RunRequest(method=method, settings=[], dataset=dataset))[2]
    print(f"config keys of {method} on {dataset} (set any with key=value; blocks with key.sub=value):")
    for key in preflight.config_keys(cfg):
        node = OmegaConf.select(cfg, key)
        if isinstance(node, DictConfig) and len(node) and key not in FREE_FORM_BLOCKS:
            continue  # a block: its leaves follow
        value = OmegaConf.to_yaml(node).strip() if isinstance(node, DictConfig) else _yaml_value(node)
        print(f"  {key} = {value}")
    print(f"  {EPOCH_CAP_KEY} = (unset)  caps every training stage (--max-epochs)")
    return 0


def _yaml_value(value: object) -> str:
    from omegaconf import ListConfig, OmegaConf

    if isinstance(value, ListConfig):
        return str(OmegaConf.to_container(value))
    return "null" if value is None else str(value)


def cmd_check(args: argparse.Namespace) -> int:
    """Run the generic every-method checks against one method; status 1 when one fails."""
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


def cmd_export(args: argparse.Namespace) -> int:
    """Write a synthetic dataset as an MMSA pickle."""
    from msabench.core.io import check_writable_dir
    from msabench.datamodules import export_synthetic
    from msabench.datamodules.synthetic import encoder_dir

    if not 0 <= args.seed <= 2**32 - 1:
        raise ConfigError(f"--seed must be from {SEED_RANGE}, not {args.seed}")
    out = args.out.expanduser()
    check_writable_dir(out if out.is_dir() else out.parent, "--out")
    path = export_synthetic(args.name, out, seed=args.seed)
    print(f"wrote {path}")
    if encoder_dir(path).is_dir():
        print(f"text encoder: {encoder_dir(path)} (the text was made by it; --bert-path DIR reads it)")
    return 0
