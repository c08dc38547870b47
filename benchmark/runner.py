"""The runner: one run = (dataset, method, training policy, seed, config) -> one checkpoint.

The checkpoint is selected on validation only and evaluated on every requested test setting without
retraining.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from msabench import config as config_lib
from msabench import results as store
from msabench.config_checks import check_run_config
from msabench.datamodules import build_datamodule, get_dataset
from msabench.errors import ConfigError, DataWarning, UnknownNameError
from msabench.metrics import METRIC_NAMES, UndefinedMetricWarning
from msabench.models import canonical_name
from msabench.models import get as get_method
from msabench.models.base import MSAMethod, count_parameters
from msabench.protocols import MISSING_CONDITIONS, POLICIES, Setting, build_policy

POLICY_CHOICES: tuple[str, ...] = (*POLICIES, "paper")


@dataclass
class RunRequest:
    """Everything a user asks of one run.

    Attributes:
        method: method name (any case, ``-`` or ``_``).
        settings: the test settings to evaluate the selected checkpoint on.
        dataset: dataset name; ``synthetic`` by default.
        train_policy: a policy name or ``paper`` (the method's own).
        seed: training seed; None takes the config's.
        data_path: an MMSA pickle (or IEMOCAP feature root) to read.
        data_root: a directory holding the datasets in MMSA's layout.
        bert_path: the local BERT the stored text was made with.
        text_view: ``auto``, ``reencoded`` or ``stored``; None takes the config's.
        overrides: ``key=value`` config overrides.
        output: the results root; each run gets a directory under it.
        extra_blocks: further method-config blocks to merge (``smoke`` in tests).
        rerun: train again even when a finished run with the same key exists (the old one is kept, renamed).
    """

    method: str
    settings: Sequence[Setting]
    dataset: str = "synthetic"
    train_policy: str = "paper"
    seed: int | None = None
    data_path: str | None = None
    data_root: str | None = None
    bert_path: str | None = None
    text_view: str | None = None
    overrides: Sequence[str] = ()
    output: Path = Path("results/runs")
    extra_blocks: Sequence[str] = ()
    rerun: bool = False
    wandb: bool | None = None
    sweep_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedRun:
    """A request resolved against the method, the data and the config: what determines the run."""

    request: RunRequest
    method_cls: type[MSAMethod]
    cfg: DictConfig
    datamodule: Any
    policy_name: str
    run_key: str
    run_dir: Path
    data_warnings: list[str] = field(default_factory=list)


def dataset_family(dataset: str) -> str:
    """Metric family of a dataset name: ``mosi`` (MOSI, MOSEI), ``sims`` or ``iemocap``, as registered."""
    return get_dataset(dataset).metric_family


def resolve_policy_name(name: str, method_cls: type[MSAMethod], cfg: DictConfig) -> str:
    """``paper`` -> the method's own policy; any other name is checked."""
    name = name.strip().lower()
    if name == "paper":
        name = str(cfg.method.paper_policy)
    if name not in POLICIES:
        raise UnknownNameError("training policy", name, POLICY_CHOICES)
    return name


def validation_settings(policy: str, test: Sequence[Setting], cfg: DictConfig) -> list[Setting]:
    """Validation settings derived from the training policy (protocols.md §9.2), with fixed masks.

    ``matched``: the test setting itself (P2 validates at the run's rate); ``lnln``: intra at
    ``evaluation.validation_rate`` (0.5, as LNLN/TF-Mamba); ``conditions``: the six missing conditions, pooled
    (MMIN's 6N set); ``stochastic``: the S1 distribution with fixed masks; ``complete``: complete data.
    """
    seed = int(cfg.evaluation.mask_seed)
    match policy:
        case "matched":
            if len(test) != 1:
                raise ConfigError(
                    "the matched policy trains one model per test setting: request one setting per run"
                )
            return [test[0]]
        case "lnln":
            return [Setting("intra", rate=float(cfg.evaluation.validation_rate), mask_seed=seed)]
        case "conditions":
            return [Setting("condition", condition=c, mask_seed=seed) for c in MISSING_CONDITIONS]
        case "stochastic":
            return [Setting("stochastic", mask_seed=seed)]
        case _:
            return [Setting("complete", mask_seed=seed)]


def _policy_params(cfg: DictConfig) -> dict[str, Any]:
    params = OmegaConf.to_container(cfg.policy, resolve=True)
    assert isinstance(params, dict)
    return params


def _check_selection(cfg: DictConfig, family: str) -> None:
    metric = str(cfg.selection.metric)
    valid = ("loss", *METRIC_NAMES[family])  # type: ignore[index]
    if metric not in valid:
        raise ConfigError(
            f"selection.metric '{metric}' does not exist for {family}-family data: "
            f"use one of {', '.join(valid)}"
        )
    if cfg.selection.mode not in ("min", "max"):
        raise ConfigError(f"selection.mode must be min or max, not '{cfg.selection.mode}'")


def _check_networks(method_cls: type[MSAMethod], cfg: DictConfig, dims: Any) -> None:
    """Build every stage's module once, so that a bad model value is a one-line error before any write.

    Networks reject impossible values (heads that do not divide the width, unknown block kinds) with a
    ValueError, modules and optimizers unknown names with a ConfigError. Training seeds the RNG again
    before it builds the modules it trains, so this check does not change any run.
    """
    previous: MSAMethod | None = None
    for stage in method_cls.stages(cfg):
        try:
            previous = stage.module(_stage_config(cfg, stage.name), dims, previous=previous)
            previous.configure_optimizers()
        except ConfigError:
            raise
        except (ValueError, TypeError) as err:
            raise ConfigError(
                f"{method_cls.method_name} config: {err} (change the key=value override or the config)"
            ) from None


def _check_trainer(cfg: DictConfig, output: Path) -> None:
    """Build the trainer once: a value Lightning refuses is one line before any data is read or written.

    Lightning checks precision, accelerator, devices and batch limits when the trainer is built.
    """
    try:
        _trainer(cfg, output, callbacks=[], logger=False)
    except (ValueError, TypeError, MisconfigurationException) as err:
        raise ConfigError(f"trainer config: {str(err).strip().splitlines()[0]}") from None


def _check_config(method_cls: type[MSAMethod], cfg: DictConfig, output: Path) -> None:
    stages = method_cls.stages(cfg)
    for stage in stages:
        stage_cfg = _stage_config(cfg, stage.name)
        check_run_config(stage_cfg, len(stages))
        _check_trainer(stage_cfg, output)


def check_request(request: RunRequest) -> None:
    """The checks of :func:`prepare` that need no data: names, config values, the trainer.

    Sweeps run them for every job before the first one starts.
    """
    method_cls, _, cfg = _compose(request)
    resolve_policy_name(request.train_policy, method_cls, cfg)
    _check_config(method_cls, cfg, Path(request.output))


def _compose(request: RunRequest) -> tuple[type[MSAMethod], str, DictConfig]:
    method_cls = get_method(request.method)
    dataset = request.dataset.strip().lower()
    family = dataset_family(dataset)
    flags: dict[str, Any] = {
        "seed": request.seed,
        "data.path": request.data_path,
        "data.root": request.data_root,
        "data.bert_path": request.bert_path,
        "data.text_view": request.text_view,
    }
    if request.wandb is not None:
        flags["logging.wandb"] = request.wandb
    cfg = config_lib.compose(
        method_cls.method_name, dataset, family, flags, request.overrides, request.extra_blocks
    )
    return method_cls, dataset, cfg


def prepare(request: RunRequest) -> PreparedRun:
    """Resolve method, config, data and key; raises user errors before anything is written."""
    method_cls, dataset, cfg = _compose(request)
    policy_name = resolve_policy_name(request.train_policy, method_cls, cfg)
    _check_config(method_cls, cfg, Path(request.output))
    settings = [_with_mask_seed(s, int(cfg.evaluation.mask_seed)) for s in request.settings]
    if not settings:
        raise ConfigError("no test setting requested: give --protocol with --rate or --condition")
    request.settings = settings
    validation = validation_settings(policy_name, settings, cfg)
    policy = build_policy(
        policy_name, matched=settings[0] if policy_name == "matched" else None, **_policy_params(cfg)
    )
    options = OmegaConf.to_container(cfg.data.options, resolve=True)
    assert isinstance(options, dict)
    datamodule = build_datamodule(
        dataset,
        data_path=cfg.data.path,
        data_root=cfg.data.root,
        train_policy=policy,
        validation=validation,
        test=settings,
        seed=int(cfg.seed),
        batch_size=int(cfg.data.batch_size),
        eval_batch_size=int(cfg.data.eval_batch_size),
        num_workers=int(cfg.data.num_workers),
        text_view=str(cfg.data.text_view),
        bert_path=cfg.data.bert_path,
        normalize=str(cfg.data.normalize),
        **options,
    )
    # Repairs made while loading are said now and recorded with the run (status.json `warnings`).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        datamodule.setup("fit")
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    data_warnings = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    _check_selection(cfg, datamodule.dims.metric_family)
    _check_networks(method_cls, cfg, datamodule.dims)
    identity = {
        "method": method_cls.method_name,
        "dataset": dataset,
        "data_sha256": datamodule.sha256,
        "data_variant": datamodule.data_variant,
        "text_view": datamodule.text_view,
        "text_encoder": datamodule.text_encoder_fingerprint,
        "train_policy": policy_name,
        "matched": settings[0].name if policy_name == "matched" else None,
        "seed": int(cfg.seed),
        "config_hash": config_lib.config_hash(cfg),
    }
    run_key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    matched = f"__{settings[0].name.replace(':', '-')}" if policy_name == "matched" else ""
    name = f"{dataset}__{method_cls.method_name}__{policy_name}{matched}__s{int(cfg.seed)}__{run_key}"
    return PreparedRun(
        request,
        method_cls,
        cfg,
        datamodule,
        policy_name,
        run_key,
        Path(request.output) / name,
        list(dict.fromkeys(data_warnings)),
    )


def _with_mask_seed(setting: Setting, mask_seed: int) -> Setting:
    return Setting(setting.protocol, setting.rate, setting.condition, mask_seed)


def quiet_lightning() -> None:
    """Keep the console for what a user needs: no hardware banners, tips or known-harmless warnings."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        r".*isinstance\(treespec, LeafSpec\).*",
        r".*number of training batches .* is smaller than the logging interval.*",
        r".*does not have many workers.*",
        r".*Checkpoint directory .* exists and is not empty.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)
    # Early epochs often predict one class; the metric says so once per epoch. The value (F1 = 0, NaN corr) is
    # what the results record.
    warnings.filterwarnings("ignore", category=UndefinedMetricWarning)


def execute(request: RunRequest) -> pd.DataFrame:
    """Train (unless a finished run with the same key exists), select on validation, test every setting.

    Returns:
        The tidy results of the requested settings (one row per setting x metric).
    """
    quiet_lightning()
    store.check_writable_dir(Path(request.output), "--output")
    prepared = prepare(request)
    run_dir = prepared.run_dir
    status = store.read_status(run_dir)
    if status["status"] == "finished" and not request.rerun:
        return _reuse(prepared)
    if status["status"] == "finished":  # --rerun: keep the old run, renamed, never overwritten
        store.archive(run_dir)
    # Anything else there (a failed run, an interrupted run of the in-place layout) stays until this attempt
    # publishes: another attempt may still be at work on it, and its files are evidence until then.
    return _train_and_test(prepared)


def _reuse(prepared: PreparedRun) -> pd.DataFrame:
    """The published run's rows for the requested settings, testing its checkpoint on those it lacks."""
    run_dir = prepared.run_dir
    with store.locked(run_dir):  # two attempts adding settings at once must not drop each other's rows
        status = store.read_status(run_dir)
        existing = store.read_run(run_dir)
        missing = [s for s in prepared.request.settings if s.name not in set(existing["setting"])]
        if missing:
            frame = _evaluate_checkpoint(prepared, missing, status)
            existing = pd.concat([existing, frame], ignore_index=True)
            store.write_results(run_dir, existing)
    wanted = {s.name for s in prepared.request.settings}
    frame = existing[existing["setting"].isin(wanted)].reset_index(drop=True)
    frame.attrs.update(run_dir=str(run_dir), cached=True, wall_time_s=status.get("wall_time_s"))
    return frame


def _train_and_test(prepared: PreparedRun) -> pd.DataFrame:
    """Train and test in this attempt's staging directory, then publish it (the first to publish wins)."""
    with store.Attempt(prepared.run_dir) as attempt:
        staged = dataclasses.replace(prepared, run_dir=attempt.dir)
        frame = _train_and_test_in(staged, attempt)
        if not attempt.publish():  # another attempt at this run published first: its results stand
            return _reuse(prepared)
    frame.attrs.update(run_dir=str(prepared.run_dir), cached=False)
    return frame


def _train_and_test_in(prepared: PreparedRun, attempt: store.Attempt) -> pd.DataFrame:
    cfg, run_dir = prepared.cfg, prepared.run_dir
    config_lib.save(cfg, run_dir / "config.yaml")
    started = time.time()
    where = {
        **attempt.identity(),
        "node": os.environ.get("MSABENCH_NODE"),  # the engine's node or job id, set by the sweep's executors
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    noted = {"warnings": prepared.data_warnings} if prepared.data_warnings else {}
    store.write_status(run_dir, "running", started=started, run_key=prepared.run_key, **where, **noted)
    try:
        module, fit_info = _fit_stages(prepared)
        module.set_test_settings(prepared.request.settings)
        trainer = _trainer(cfg, run_dir, callbacks=[], logger=False)
        trainer.test(module, datamodule=prepared.datamodule, verbose=False)
        where["device"] = str(trainer.strategy.root_device)
        wall = time.time() - started
        info = {**fit_info, "wall_time_s": wall, "params": count_parameters(module.network)}
        frame = _rows(prepared, module.test_results, info)
        store.write_results(run_dir, frame)
        store.write_status(run_dir, "finished", run_key=prepared.run_key, **info, **where, **noted)
        if cfg.logging.wandb:  # after the results are safe: W&B never decides a run's status
            from msabench import wandb_logging

            wandb_logging.log_test_results(prepared, frame)
        return frame
    except Exception as err:
        (run_dir / "error.log").write_text(traceback.format_exc())
        info = {"wall_time_s": time.time() - started}
        frame = _rows(prepared, {}, info, error=f"{type(err).__name__}: {err}")
        store.write_results(run_dir, frame)
        store.write_status(
            run_dir, "failed", run_key=prepared.run_key, error=str(err), **info, **where, **noted
        )
        attempt.publish()  # a failed run is recorded unless a finished one is there (then that one stands)
        raise


def _fit_stages(prepared: PreparedRun) -> tuple[MSAMethod, dict[str, Any]]:
    cfg, run_dir, dm = prepared.cfg, prepared.run_dir, prepared.datamodule
    stages = prepared.method_cls.stages(cfg)
    previous: MSAMethod | None = None
    info: dict[str, Any] = {}
    for index, stage in enumerate(stages):
        stage_cfg = _stage_config(cfg, stage.name)
        policy_name = stage.policy or prepared.policy_name
        dm.train_policy = build_policy(
            policy_name,
            matched=prepared.request.settings[0] if policy_name == "matched" else None,
            **_policy_params(stage_cfg),
        )
        dm.validation = (
            [Setting("complete", mask_seed=int(cfg.evaluation.mask_seed))]
            if stage.validation == "complete"
            else validation_settings(policy_name, prepared.request.settings, stage_cfg)
        )
        dm.validation_complete_view = stage.module.validation_uses_complete_view
        L.seed_everything(int(cfg.seed) + index, workers=True, verbose=False)
        module = stage.module(stage_cfg, dm.dims, previous=previous)
        monitor = f"val/{stage_cfg.selection.metric}"
        checkpoint = L.pytorch.callbacks.ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            filename=stage.name,
            monitor=monitor,
            mode=stage_cfg.selection.mode,
            save_top_k=1,
            save_weights_only=True,
            enable_version_counter=False,
        )
        callbacks: list[Any] = [checkpoint]
        if stage_cfg.trainer.patience is not None:
            callbacks.append(
                L.pytorch.callbacks.EarlyStopping(
                    monitor=monitor,
                    mode=stage_cfg.selection.mode,
                    patience=int(stage_cfg.trainer.patience),
                    min_delta=1e-6,
                    check_finite=False,
                )
            )
        loggers: list[Any] = []
        if cfg.logging.csv and not stage_cfg.trainer.fast_dev_run:
            loggers.append(L.pytorch.loggers.CSVLogger(run_dir, name="logs", version=stage.name))
        if cfg.logging.wandb:
            from msabench import wandb_logging

            wandb_logger = wandb_logging.stage_logger(prepared, stage.name, len(stages))
            if wandb_logger is not None:
                loggers.append(wandb_logger)
        trainer = _trainer(stage_cfg, run_dir, callbacks=callbacks, logger=loggers or False)
        trainer.fit(module, datamodule=dm)
        best = checkpoint.best_model_path
        if best:
            module.load_state_dict(
                torch.load(best, map_location=module.device, weights_only=True)["state_dict"]
            )
            ckpt_epoch = _epoch_of(checkpoint)
        else:  # fast_dev_run and friends save nothing: keep the last weights
            ckpt_epoch = trainer.current_epoch
        info = {
            "epochs": trainer.current_epoch,
            "ckpt_epoch": ckpt_epoch,
            "selection": f"val:{stage_cfg.selection.metric}:{stage_cfg.selection.mode}",
        }
        previous = module
    assert previous is not None
    if (run_dir / "checkpoints" / f"{stages[-1].name}.ckpt").exists():
        shutil.copyfile(run_dir / "checkpoints" / f"{stages[-1].name}.ckpt", run_dir / "model.ckpt")
    else:
        torch.save({"state_dict": previous.state_dict()}, run_dir / "model.ckpt")
    return previous, info


def _epoch_of(checkpoint: Any) -> int:
    """The 1-based epoch whose weights the checkpoint holds (Lightning stores the 0-based index)."""
    state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
    return int(state.get("epoch", -1)) + 1


def _stage_config(cfg: DictConfig, stage: str) -> DictConfig:
    block = cfg.stages.get(stage) if cfg.stages else None
    if not block:
        return cfg
    merged = OmegaConf.merge(OmegaConf.to_container(cfg), OmegaConf.to_container(block))
    OmegaConf.set_readonly(merged, True)
    return merged  # type: ignore[return-value]


def _trainer(cfg: DictConfig, run_dir: Path, callbacks: list[Any], logger: Any) -> L.Trainer:
    t = cfg.trainer
    progress = t.enable_progress_bar
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    optional = {
        k: t[k]
        for k in ("limit_train_batches", "limit_val_batches", "limit_test_batches", "gradient_clip_val")
        if t[k] is not None
    }
    return L.Trainer(
        max_epochs=int(t.max_epochs),
        min_epochs=int(t.min_epochs),
        accelerator=t.accelerator,
        devices=t.devices,
        precision=t.precision,
        accumulate_grad_batches=int(t.accumulate_grad_batches),
        deterministic=bool(t.deterministic),
        fast_dev_run=t.fast_dev_run,
        log_every_n_steps=int(t.log_every_n_steps),
        callbacks=callbacks,
        logger=logger,
        enable_progress_bar=bool(progress),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(run_dir),
        **optional,
    )


def _evaluate_checkpoint(
    prepared: PreparedRun, settings: Sequence[Setting], status: Mapping[str, Any]
) -> pd.DataFrame:
    cfg, dm = prepared.cfg, prepared.datamodule
    module = build_final_module(prepared)
    state = torch.load(prepared.run_dir / "model.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    dm.test = list(settings)
    module.set_test_settings(settings)
    _trainer(cfg, prepared.run_dir, callbacks=[], logger=False).test(module, datamodule=dm, verbose=False)
    info = {k: status.get(k) for k in ("epochs", "ckpt_epoch", "selection", "wall_time_s", "params")}
    return _rows(prepared, module.test_results, info, settings=settings)


def build_final_module(prepared: PreparedRun) -> MSAMethod:
    """The module of the run's final stage, every earlier stage built untrained (weights: model.ckpt)."""
    cfg, dims = prepared.cfg, prepared.datamodule.dims
    previous: MSAMethod | None = None
    for stage in prepared.method_cls.stages(cfg):
        previous = stage.module(_stage_config(cfg, stage.name), dims, previous=previous)
    assert previous is not None
    return previous


def _rows(
    prepared: PreparedRun,
    results: Mapping[str, Mapping[str, float]],
    info: Mapping[str, Any],
    error: str | None = None,
    settings: Sequence[Setting] | None = None,
) -> pd.DataFrame:
    cfg, dm = prepared.cfg, prepared.datamodule
    family = dm.dims.metric_family
    common = {
        "run_key": prepared.run_key,
        "status": "failed" if error else "finished",
        "error": error,
        "dataset": cfg.dataset,
        "data_sha256": dm.sha256,
        "data_variant": dm.data_variant,
        "text_view": dm.text_view,
        "method": prepared.method_cls.method_name,
        "train_policy": prepared.policy_name,
        "seed": int(cfg.seed),
        "metric_family": family,
        "selection": info.get("selection"),
        "ckpt_epoch": info.get("ckpt_epoch"),
        "epochs": info.get("epochs"),
        "wall_time_s": info.get("wall_time_s"),
        "params": info.get("params"),
        "config_hash": config_lib.config_hash(cfg),
        "msabench_version": _version(),
        "git_commit": _git_commit(),
    }
    rows = []
    for setting in settings or prepared.request.settings:
        where = _setting_columns(setting)
        metrics = results.get(setting.name)
        if metrics is None:
            rows.append({**common, **where, "metric": None, "value": float("nan")})
            continue
        rows.extend({**common, **where, "metric": m, "value": v} for m, v in metrics.items())
    return pd.DataFrame(rows, columns=list(store.RESULT_COLUMNS))


def _setting_columns(setting: Setting) -> dict[str, Any]:
    protocol = "inter" if setting.protocol == "condition" else setting.protocol
    return {
        "protocol": protocol,
        "rate": setting.rate if setting.rate is not None else float("nan"),
        "condition": setting.condition,
        "setting": setting.name,
        "mask_seed": setting.mask_seed,
    }


def _version() -> str:
    try:
        return metadata.version("msabench")
    except metadata.PackageNotFoundError:
        return "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run(
    method: str,
    protocol: str = "intra",
    rate: float | None = None,
    condition: str | None = None,
    *,
    dataset: str = "synthetic",
    data_path: str | None = None,
    data_root: str | None = None,
    seed: int | None = None,
    train_policy: str = "paper",
    bert_path: str | None = None,
    text_view: str | None = None,
    output: str | Path = "results/runs",
    overrides: Sequence[str] | Mapping[str, Any] = (),
    rerun: bool = False,
    **dotted: Any,
) -> pd.DataFrame:
    """Python API: train, select on validation, test one setting; returns the tidy results.

    Example::

        import msabench
        df = msabench.run(method="lf_dnn", protocol="intra", rate=0.3, trainer__max_epochs=2)

    Args:
        method: method name (``lf_dnn``, ``IF-MMIN``, ...).
        protocol: ``intra`` or ``inter``.
        rate: the missing rate of the protocol.
        condition: with ``inter``: the available modalities instead of a rate (``"ta"``).
        dataset: dataset name (``synthetic`` by default).
        data_path: a data file.
        data_root: a directory with the datasets in MMSA's layout (default ``$MSABENCH_DATA``).
        seed: training seed (the config's by default).
        train_policy: a policy name or ``paper``.
        bert_path: the local BERT the stored text was made with (re-encodes text where tokens are dropped).
        text_view: ``auto``, ``reencoded`` or ``stored`` (see :mod:`msabench.datamodules.text_view`).
        output: the results root.
        overrides: ``key=value`` strings or a mapping of dotted keys.
        rerun: train again even if a finished run with the same key exists.
        **dotted: further overrides with ``__`` for dots (``trainer__max_epochs=2``).
    """
    items = [f"{k}={v}" for k, v in overrides.items()] if isinstance(overrides, Mapping) else list(overrides)
    items += [f"{k.replace('__', '.')}={v}" for k, v in dotted.items()]
    setting = make_setting(protocol, rate, condition)
    request = RunRequest(
        method=canonical_name(method),
        settings=[setting],
        dataset=dataset,
        train_policy=train_policy,
        seed=seed,
        data_path=data_path,
        data_root=data_root,
        bert_path=bert_path,
        text_view=text_view,
        overrides=items,
        output=Path(output),
        rerun=rerun,
    )
    return execute(request)


def make_setting(protocol: str, rate: float | None = None, condition: str | None = None) -> Setting:
    """The setting a user asks for with ``--protocol``, ``--rate`` and ``--condition``."""
    protocol = protocol.strip().lower()
    if protocol not in ("intra", "inter"):
        raise UnknownNameError("protocol", protocol, ("intra", "inter"))
    if condition is not None:
        if protocol != "inter":
            raise ConfigError("--condition goes with --protocol inter (whole modalities missing)")
        if rate is not None:
            raise ConfigError("give either --rate or --condition with --protocol inter, not both")
        return Setting("condition", condition=condition)
    if rate is None:
        hint = "--rate R" if protocol == "intra" else "--rate R or --condition ta"
        raise ConfigError(f"--protocol {protocol} needs {hint}")
    return Setting(protocol, rate=float(rate))  # type: ignore[arg-type]
