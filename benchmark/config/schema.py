"""Typed schemas of the default config blocks: a wrong type or an unknown key is one line, before any run.

The schemas hold the types; ``configs/defaults.yaml`` holds the values with their comments, so each default
is written once. :func:`typed_defaults` merges the two; every later merge (the method's config, its dataset
blocks, CLI flags, ``key=value`` overrides) is then checked against the types, and values arrive typed (an
``int`` field holds an int), so no reader casts them. Ranges (a seed's bounds, a positive learning rate) are
checked by :mod:`msabench.config.checks`.

A method's ``config.yaml`` may add keys of its own to ``loss``, ``optim`` and ``model`` (its loss weights, its
per-group learning rates, its network's widths); the dataclasses of its ``config.py`` type them
(:class:`msabench.models.schema.BlockSchemas`, :func:`typed_block`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError
from omegaconf.nodes import AnyNode, BooleanNode, EnumNode, FloatNode, IntegerNode, StringNode

from msabench.errors import ConfigError
from msabench.models.schema import LossConfig, OptimConfig


@dataclass
class MethodConfig:
    """Which method runs, and the training policy its paper uses."""

    name: str = MISSING
    paper_policy: str = MISSING


@dataclass
class DataConfig:
    """Where the data is read from and how it is batched."""

    path: str | None = MISSING
    root: str | None = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    num_workers: int = MISSING
    text_view: str = MISSING
    bert_path: str | None = MISSING
    normalize: str = MISSING
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationConfig:
    """The masks of validation and test."""

    mask_seed: int = MISSING
    validation_rate: float = MISSING


@dataclass
class SelectionConfig:
    """The validation metric the checkpoint is selected on."""

    metric: str = MISSING
    mode: str = MISSING


@dataclass
class TrainerConfig:
    """Lightning ``Trainer`` arguments, passed through as they are, plus early stopping's ``patience``.

    Fields Lightning accepts in several types (``devices``: a count, a list or ``auto``; the batch limits: a
    count or a fraction; ``fast_dev_run``: true or a batch count; ``precision``: ``32-true`` or ``16``) are
    untyped here: Lightning checks them when the trainer is built, and converting them would change their
    meaning (an int limit counts batches, a float one is a fraction).
    """

    max_epochs: int = MISSING
    min_epochs: int = MISSING
    patience: int | None = MISSING
    gradient_clip_val: float | None = MISSING
    accumulate_grad_batches: int = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING
    precision: Any = MISSING
    deterministic: bool = MISSING
    fast_dev_run: Any = MISSING
    limit_train_batches: Any = MISSING
    limit_val_batches: Any = MISSING
    limit_test_batches: Any = MISSING
    log_every_n_steps: int = MISSING
    enable_progress_bar: bool | None = MISSING


@dataclass
class LoggingConfig:
    """Where training curves go."""

    csv: bool = MISSING
    wandb: bool = MISSING
    wandb_project: str = MISSING
    wandb_group: str | None = MISSING


@dataclass
class RunConfig:
    """The whole run config: the blocks of ``configs/defaults.yaml``.

    ``data.options`` (a dataset's own options), ``policy`` (a training policy's parameters), ``model`` (the
    method's network) and ``stages`` (per-stage overrides) are checked by their owners.
    """

    seed: int = MISSING
    dataset: str = MISSING
    train_policy: str = MISSING
    method: MethodConfig = field(default_factory=MethodConfig)
    data: DataConfig = field(default_factory=DataConfig)
    policy: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    model: Any = field(default_factory=dict)  # typed by the method's config_schema, if it has one
    stages: dict[str, Any] = field(default_factory=dict)


def plain_dict(node: DictConfig) -> dict[str, Any]:
    """``node`` resolved into plain Python containers (a config block's keys are always strings)."""
    out = OmegaConf.to_container(node, resolve=True)
    assert isinstance(out, dict)
    return cast("dict[str, Any]", out)


def typed_defaults(values: DictConfig) -> DictConfig:
    """The defaults' values (``configs/defaults.yaml``) in the typed schema.

    Raises:
        ConfigError: a default of the wrong type, or a key the schema lacks (a mistake in the package).
    """
    return merge_typed(OmegaConf.structured(RunConfig), values, "configs/defaults.yaml")


def typed_block(schema: type, block: Any, name: str, method: str) -> DictConfig:
    """A method's ``name`` block (``model``, ``loss``, ``optim``) in its schema: every key known and typed.

    Args:
        schema: the method's dataclass for the block, its fields without defaults (the values are in the
            method's ``config.yaml``).
        block: the merged block.
        name: the block's name, for the keys in the message.
        method: the method's name, for the message.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or a key of the schema with no value.
    """
    if isinstance(
        block, DictConfig
    ):  # its own object type (the shared keys' dataclass) would refuse the merge
        block = OmegaConf.to_container(block, resolve=False)
    typed = merge_typed(OmegaConf.structured(schema), block, f"{method}'s {name} block", prefix=f"{name}.")
    missing = sorted(OmegaConf.missing_keys(typed))
    if missing:
        raise ConfigError(
            f"{method}'s {name} block has no value for {name}.{missing[0]}: set it in {method}/config.yaml"
        )
    OmegaConf.to_object(typed)  # the dataclass's own value checks (its __post_init__), before torch loads
    return typed


def merge_typed(base: DictConfig, other: Any, where: str, prefix: str = "") -> DictConfig:
    """``OmegaConf.merge(base, other)`` with a type or key error as one line naming the key and the fix."""
    try:
        return OmegaConf.merge(base, other)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        raise type_error(err, base, where, prefix) from None


def type_error(err: OmegaConfBaseException, cfg: DictConfig, where: str, prefix: str = "") -> ConfigError:
    """One line for an OmegaConf error: the key, what it expects, the value given, and where it came from."""
    key = f"{prefix}{getattr(err, 'full_key', '') or ''}"
    if isinstance(err, ValidationError):
        expected = expected_type(cfg, key.removeprefix(prefix))
        value = str(err).split("'")[1] if str(err).count("'") >= 2 else "?"
        given = "null" if value == "None" else f"'{value}'"
        return ConfigError(f"{where}: {key} must be {expected}, not {given} (fix the value)")
    if isinstance(err, ConfigKeyError):
        return ConfigError(f"{where} sets an unknown key: {key} (remove it or fix its spelling)")
    return ConfigError(f"{where}: {str(err).splitlines()[0]}")


_NODE_TYPES: dict[type, str] = {
    IntegerNode: "an integer",
    FloatNode: "a number",
    BooleanNode: "true or false",
    StringNode: "a string",
    EnumNode: "one of its names",
}


def expected_type(cfg: DictConfig, key: str) -> str:
    """What the typed node at dotted ``key`` accepts, in words (``an integer or null``)."""
    *parents, leaf = key.split(".")
    node: Any = cfg
    for part in parents:
        node = node._get_node(part) if isinstance(node, DictConfig) else None  # noqa: SLF001 - no resolving
    child = node._get_node(leaf) if isinstance(node, DictConfig) else None  # noqa: SLF001
    if isinstance(child, DictConfig):
        return "a mapping of keys"
    if isinstance(child, ListConfig):
        return "a list"
    if child is None or isinstance(child, AnyNode):
        return "a value of its type"
    words = _NODE_TYPES.get(type(child), "a value of its type")
    return f"{words} or null" if child._is_optional() else words  # noqa: SLF001


def set_struct_all(cfg: DictConfig, value: bool, skip: tuple[str, ...] = ()) -> None:
    """Set the struct flag on ``cfg`` and every mapping below it (typed nodes carry their own flag).

    ``False`` lets a method's config add keys to the typed blocks (its loss weights) as it could before the
    blocks were typed; ``True`` closes them again. Keys in ``skip`` (top-level) keep their own flag.
    """
    cfg._set_flag("struct", value)  # noqa: SLF001 - OmegaConf.set_struct does not reach typed children
    for key in cfg:
        if key in skip:
            continue
        child = cfg._get_node(key)  # noqa: SLF001
        if isinstance(child, DictConfig):
            set_struct_all(child, value)
