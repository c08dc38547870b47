"""Checks of a run's config before anything is read or written: each failure is one line."""

from __future__ import annotations

from pathlib import Path

from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from msabench.config.checks import check_run_config
from msabench.datamodules import DataDims
from msabench.errors import ConfigError
from msabench.metrics import METRIC_NAMES
from msabench.models.base import MSAMethod
from msabench.runner.request import RunRequest, compose, resolve_policy_name
from msabench.runner.stages import stage_config
from msabench.runner.trainer import build_trainer


def check_selection(cfg: DictConfig, family: str) -> None:
    """The selection metric exists for the data's metric family, and the mode is min or max."""
    metric = cfg.selection.metric
    valid = ("loss", *METRIC_NAMES[family])  # type: ignore[index]
    if metric not in valid:
        raise ConfigError(
            f"selection.metric '{metric}' does not exist for {family}-family data: "
            f"use one of {', '.join(valid)}"
        )
    if cfg.selection.mode not in ("min", "max"):
        raise ConfigError(f"selection.mode must be min or max, not '{cfg.selection.mode}'")


def check_networks(method_cls: type[MSAMethod], cfg: DictConfig, dims: DataDims) -> None:
    """Build every stage's module once, so that a bad model value is a one-line error before any write.

    Networks reject impossible values (heads that do not divide the width, unknown block kinds) with a
    ValueError, modules and optimizers unknown names with a ConfigError. Training seeds the RNG again
    before it builds the modules it trains, so this check does not change any run.
    """
    previous: MSAMethod | None = None
    for stage in method_cls.stages(cfg):
        try:
            previous = stage.module(stage_config(cfg, stage.name), dims, previous=previous)
            previous.configure_optimizers()
        except ConfigError:
            raise
        except (ValueError, TypeError) as err:
            raise ConfigError(
                f"{method_cls.method_name} config: {err} (change the key=value override or the config)"
            ) from None


def check_trainer(cfg: DictConfig, output: Path) -> None:
    """Build the trainer once: a value Lightning refuses is one line before any data is read or written.

    Lightning checks precision, accelerator, devices and batch limits when the trainer is built.
    """
    try:
        build_trainer(cfg, output, callbacks=[], logger=False)
    except (ValueError, TypeError, MisconfigurationException) as err:
        raise ConfigError(f"trainer config: {str(err).strip().splitlines()[0]}") from None


def check_config(method_cls: type[MSAMethod], cfg: DictConfig, output: Path) -> None:
    """Value ranges and the trainer of every stage."""
    stages = method_cls.stages(cfg)
    for stage in stages:
        stage_cfg = stage_config(cfg, stage.name)
        check_run_config(stage_cfg, len(stages))
        check_trainer(stage_cfg, output)


def check_request(request: RunRequest) -> None:
    """The checks of :func:`msabench.runner.prepare` that need no data: names, config values, the trainer.

    Sweeps run them for every job before the first one starts.
    """
    method_cls, _, cfg = compose(request)
    resolve_policy_name(request.train_policy, method_cls, cfg)
    check_config(method_cls, cfg, Path(request.output))
