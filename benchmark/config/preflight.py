"""The checks of a run's inputs that need neither torch nor Lightning, made before either loads.

Importing torch and Lightning takes 6-15 s. A mistake in a name, a rate, a path or a config key is refused
here first, in one line and well under a second: the method name (built-in folders and plugin entry points,
read without importing them), the dataset, the training policy, the test setting, the data and output paths,
and the composed config (every key, its type and its range, the ``model`` block of a built-in method
included). Everything checked here is checked again where it is used; what only torch or Lightning can
check (a plugin's config, the trainer's accelerator and precision, the networks) is checked after they load
(:func:`msabench.runner.check_request`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from msabench import config as config_lib
from msabench.config.checks import check_run_config
from msabench.config.schema import merge_typed
from msabench.core.vocabulary import POLICY_CHOICES, RATE_PROTOCOLS
from msabench.datamodules.registry import MMSA_DATAMODULE, get_dataset
from msabench.errors import ConfigError, DatasetNotFoundError, UnknownNameError
from msabench.protocols.settings import Setting


def _text(value: object, argument: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{argument} must be a name (a string), not {value!r}")
    return value


def method_name(name: object, argument: str = "method") -> str:
    """The canonical name of a built-in or plugin method, found without importing any method.

    Raises:
        UnknownNameError: no built-in method and no ``msabench.methods`` entry point has the name.
    """
    from msabench.models import canonical_name, known_names

    key = canonical_name(_text(name, argument))
    builtins, plugins = known_names()
    if key not in (*builtins, *plugins):
        raise UnknownNameError("method", str(name), [*builtins, *plugins])
    return key


def dataset_name(name: object, argument: str = "dataset") -> str:
    """The canonical (lower-case) name of a registered dataset."""
    key = _text(name, argument).strip().lower()
    get_dataset(key)
    return key


def policy_name(name: object, argument: str = "train_policy") -> str:
    """A training policy's name, or ``paper``."""
    key = _text(name, argument).strip().lower()
    if key not in POLICY_CHOICES:
        raise UnknownNameError("training policy", key, POLICY_CHOICES)
    return key


def make_setting(protocol: object, rate: object = None, condition: object = None) -> Setting:
    """The setting a user asks for with ``--protocol``, ``--rate`` and ``--condition``.

    Raises:
        ConfigError: an unknown protocol, a rate that is not a number or out of the protocol's range, or a
            condition that is not one to three of the letters t, a, v.
    """
    protocol = _text(protocol, "protocol").strip().lower()
    if protocol not in RATE_PROTOCOLS:
        raise UnknownNameError("protocol", protocol, RATE_PROTOCOLS)
    if condition is not None:
        condition = _text(condition, "condition")
        if protocol != "inter":
            raise ConfigError("--condition goes with --protocol inter (whole modalities missing)")
        if rate is not None:
            raise ConfigError("give either --rate or --condition with --protocol inter, not both")
        return Setting("condition", condition=condition)
    if rate is None:
        hint = "--rate R" if protocol == "intra" else "--rate R or --condition ta"
        raise ConfigError(f"--protocol {protocol} needs {hint}")
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):  # True would train at r = 1
        raise ConfigError(f"rate must be a number, not {rate!r}")
    return Setting(protocol, rate=float(rate))  # type: ignore[arg-type]


def path_argument(value: object, argument: str, *, optional: bool = True) -> Path | None:
    """``value`` as a path; an empty one is refused (it would mean the current directory)."""
    if value is None and optional:
        return None
    if not isinstance(value, str | Path):
        raise ConfigError(f"{argument} must be a path (a string), not {value!r}")
    if not str(value).strip():
        raise ConfigError(f"{argument} is empty: give a path (use . for the current directory)")
    return Path(value).expanduser()


def check_data_path(path: str | Path | None, dataset: str, argument: str = "--data-path") -> None:
    """A data path that exists and is of the kind the dataset reads (a pickle file, or a feature root)."""
    location = path_argument(path, argument)
    if location is None:
        return
    if not location.exists():
        raise DatasetNotFoundError(f"{argument} {location} does not exist: give the data file's path")
    spec = get_dataset(dataset)
    reads_file = spec.synthetic or spec.datamodule == MMSA_DATAMODULE  # both read one MMSA pickle
    if reads_file and location.is_dir():
        raise ConfigError(
            f"{argument} {location} is a directory: {dataset} reads one pickle file (e.g. "
            f"{argument} DIR/unaligned_50.pkl), or give the folder as --data-root"
        )


def check_data_root(path: str | Path | None, argument: str = "--data-root") -> None:
    """A data root that is an existing directory."""
    root = path_argument(path, argument)
    if root is None:
        return
    if not root.exists():
        raise DatasetNotFoundError(f"{argument} {root} does not exist: give the folder holding the datasets")
    if not root.is_dir():
        raise ConfigError(f"{argument} {root} is a file: give the folder holding the datasets")


def check_output(path: object, argument: str = "--output") -> Path:
    """A results root that is not empty, not a file, and can be created or written."""
    from msabench.core.io import check_writable_dir

    output = path_argument(path, argument, optional=False)
    assert output is not None
    check_writable_dir(output, argument)
    return output


def config_flags(
    seed: int | None = None,
    data_path: str | None = None,
    data_root: str | None = None,
    bert_path: str | None = None,
    text_view: str | None = None,
    wandb: bool | None = None,
) -> dict[str, Any]:
    """The config keys the run's named flags set (a None flag sets nothing)."""
    flags: dict[str, Any] = {
        "seed": seed,
        "data.path": data_path,
        "data.root": data_root,
        "data.bert_path": bert_path,
        "data.text_view": text_view,
    }
    if wandb is not None:
        flags["logging.wandb"] = wandb
    return flags


def compose_config(
    method: str,
    dataset: str,
    flags: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    extra_blocks: Iterable[str] = (),
) -> DictConfig | None:
    """The run's config, composed as the runner composes it, for a built-in method; None for a plugin.

    A plugin's config file and schemas are found through its class, which may import torch: it is composed
    after torch loads.
    """
    from msabench.models import builtin_config

    builtin = builtin_config(method)
    if builtin is None:
        return None
    family = get_dataset(dataset).metric_family
    return config_lib.compose(
        method, dataset, family, flags, list(overrides), extra_blocks, schemas=builtin[1]
    )


def check_config_values(cfg: DictConfig) -> None:
    """The ranges of the run's config and of each ``stages.<name>`` block merged over it.

    The seed's upper bound depends on how many stages the method trains, which only its class knows: the
    bound of one stage is checked here, the exact one after torch loads.
    """
    check_run_config(cfg, 1)
    for stage, block in (cfg.stages or {}).items():
        if block:
            staged = merge_typed(cfg, block, f"the stages.{stage} block")
            check_run_config(staged, 1)


def check_run(
    *,
    method: object,
    protocol: object,
    rate: object,
    condition: object,
    dataset: object,
    train_policy: object,
    data_path: object,
    data_root: object,
    output: object,
    flags: Mapping[str, Any],
    overrides: Sequence[str],
) -> tuple[str, Setting, Path]:
    """Every check of one run that needs neither torch nor Lightning, cheapest first.

    Returns:
        The canonical method name, the test setting and the results root.
    """
    method = method_name(method)
    dataset = dataset_name(dataset)
    policy_name(train_policy)
    setting = make_setting(protocol, rate, condition)
    check_data_path(data_path, dataset)  # type: ignore[arg-type]
    check_data_root(data_root)  # type: ignore[arg-type]
    cfg = compose_config(method, dataset, flags, overrides)
    if cfg is not None:
        check_config_values(cfg)
    root = check_output(output)
    return method, setting, root


def config_keys(cfg: DictConfig) -> list[str]:
    """Every dotted key of a composed config that an override may set (leaves and blocks)."""
    return config_lib.all_keys(cfg)


__all__ = [
    "check_config_values",
    "check_data_path",
    "check_data_root",
    "check_output",
    "check_run",
    "compose_config",
    "config_flags",
    "config_keys",
    "dataset_name",
    "make_setting",
    "method_name",
    "path_argument",
    "policy_name",
]
