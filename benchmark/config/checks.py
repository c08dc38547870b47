"""Type and range checks of a resolved run config: one line for a bad value, before anything is loaded.

Lightning, torch and numpy reject many of these values themselves, but only once training has started (a seed
outside numpy's range fails when the first stage seeds its generators), with a traceback, after the run
directory was written. Values the trainer decides (accelerator, devices, precision, batch limits) are checked
by building the trainer once (``runner.checks.check_trainer``); optimizer values by building the optimizer.
"""

from __future__ import annotations

import math
from typing import Any, Final

from omegaconf import DictConfig, OmegaConf

from msabench.errors import ConfigError

# numpy's and Lightning's seeding accept 0 .. 2^32 - 1; stage k of a run seeds with seed + k.
SEED_MAX: Final[int] = 2**32 - 1


def check_run_config(cfg: DictConfig, stages: int = 1) -> None:
    """Check the values no later step checks before training starts.

    Args:
        cfg: the resolved config (of the run or of one stage).
        stages: how many training stages the run has (each seeds with ``seed`` + its index).

    Raises:
        ConfigError: a value of the wrong type or out of range, naming the key and what it accepts.
    """
    _integer(cfg, "seed", 0, SEED_MAX - (stages - 1))
    _integer(cfg, "evaluation.mask_seed")
    _real(cfg, "evaluation.validation_rate", 0.0, 1.0)
    _integer(cfg, "data.batch_size", 1)
    _integer(cfg, "data.eval_batch_size", 1)
    _integer(cfg, "data.num_workers", 0)
    from msabench.datamodules.normalize import check_normalization  # the data layer owns the names

    check_normalization(str(_value(cfg, "data.normalize")))
    if OmegaConf.select(cfg, "data.options.data_seed") is not None:
        _integer(cfg, "data.options.data_seed", 0, SEED_MAX)
    if OmegaConf.select(cfg, "data.options.n_scale") is not None:
        _real(cfg, "data.options.n_scale", 0.0, positive=True)
    patience = _integer(cfg, "trainer.patience", 0, optional=True)
    epochs = _value(cfg, "trainer.max_epochs")
    if not (epochs == -1 and patience is not None and not isinstance(epochs, bool)):
        _integer(cfg, "trainer.max_epochs", 1, hint="or -1 (no cap) with trainer.patience set")
    _integer(cfg, "trainer.min_epochs", 0)
    _integer(cfg, "trainer.accumulate_grad_batches", 1)
    _real(cfg, "trainer.gradient_clip_val", 0.0, optional=True)
    _real(cfg, "optim.lr", 0.0, positive=True)
    _real(cfg, "optim.weight_decay", 0.0)


def _value(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def _integer(
    cfg: DictConfig,
    key: str,
    low: int | None = None,
    high: int | None = None,
    *,
    optional: bool = False,
    hint: str = "",
) -> int | None:
    value = _value(cfg, key)
    if value is None and optional:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and (low is None or value >= low) and (high is None or value <= high):
        return value
    raise ConfigError(
        f"{key} must be {_range('an integer', low, high, optional)}{_hint(hint)}, not {value!r}"
    )


def _real(
    cfg: DictConfig,
    key: str,
    low: float | None = None,
    high: float | None = None,
    *,
    positive: bool = False,
    optional: bool = False,
) -> float | None:
    value = _value(cfg, key)
    if value is None and optional:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if (
        ok
        and (low is None or value >= low)
        and (high is None or value <= high)
        and (value > 0 or not positive)
    ):
        return float(value)
    what = "a number > 0" if positive else _range("a number", low, high, optional)
    raise ConfigError(f"{key} must be {what}, not {value!r}")


def _range(what: str, low: float | None, high: float | None, optional: bool) -> str:
    if low is not None and high is not None:
        text = f"{what} from {low} to {high}"
    elif low is not None:
        text = f"{what} >= {low}"
    else:
        text = what
    return f"{text} or null" if optional else text


def _hint(hint: str) -> str:
    return f" ({hint})" if hint else ""
