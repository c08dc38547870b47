"""Configuration: defaults <- method config (dataset blocks) <- CLI flags <- ``key=value`` overrides."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from msabench.config.schema import merge_typed, set_struct_all, type_error, typed_block, typed_defaults
from msabench.datamodules.registry import get_dataset
from msabench.errors import ConfigError, UnknownKeyError

if TYPE_CHECKING:
    from importlib.abc import Traversable  # importlib.resources.abc from Python 3.11 on

    from msabench.models.schema import BlockSchemas

# Keys of the resolved config that do not change what is trained or measured (where and how it is written).
NON_DETERMINING_KEYS: tuple[str, ...] = (
    "data.path",
    "data.root",
    "data.num_workers",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "logging",
)


# Top-level blocks of a method's config that are merged only when asked for (``extra_blocks``), after the
# dataset blocks: ``smoke`` (tiny widths, by the generic tests), ``quick`` (the budget of the `quick` sweep
# preset, which names it in its ``blocks:``) and ``reference`` (the converged budget of the reference grid,
# the `synthetic` preset). A method without the block asked for keeps what it has.
OPTIONAL_BLOCKS: tuple[str, ...] = ("smoke", "quick", "reference")


def load_defaults() -> DictConfig:
    """The suite-wide defaults (``benchmark/configs/defaults.yaml``) in their typed schema."""
    text = resources.files("msabench").joinpath("configs/defaults.yaml").read_text()
    return typed_defaults(OmegaConf.create(text))  # type: ignore[arg-type]


def load_method_config(method: str) -> DictConfig:
    """The method's ``config.yaml`` as written, dataset blocks included.

    The file lies beside the module that defines the method's class (or at its ``config_path``), for the
    built-in methods and plugins alike (``msabench.models.config_file``).
    """
    return OmegaConf.create(_method_config_file(method).read_text())  # type: ignore[return-value]


def _method_config_file(method: str) -> Traversable:
    """The method's ``config.yaml``; a built-in method's is found without importing it (nor torch)."""
    from msabench.models import builtin_config, config_file

    builtin = builtin_config(method)
    return builtin[0] if builtin is not None else config_file(method)


def _config_name(method: str) -> str:
    """How messages name a method's config file: its folder and file name (``lf_dnn/config.yaml``)."""
    path = _method_config_file(method)
    parent = Path(str(path)).parent.name
    return f"{parent}/{path.name}" if parent else path.name


def dataset_blocks(dataset: str, family: str) -> list[str]:
    """Names of the method-config blocks that apply to ``dataset``, in merge order (later wins).

    The paper's block for the dataset family comes first (``mosi`` for MOSI and MOSEI, ``sims``,
    ``iemocap``), then the CPU budget of ``synthetic`` for every synthetic variant, then the block of the
    exact dataset name.
    """
    spec = get_dataset(dataset)
    blocks = [family, spec.config_block, *(["synthetic"] if spec.synthetic else []), dataset]
    return list(dict.fromkeys(blocks))


def compose(
    method: str,
    dataset: str,
    family: str,
    flags: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    extra_blocks: Iterable[str] = (),
    schemas: BlockSchemas | None = None,
) -> DictConfig:
    """Merge the defaults, the method's config, its dataset blocks, CLI flags and dotlist overrides.

    Args:
        method: registered method name (canonical).
        dataset: dataset name (canonical).
        family: the dataset's metric family (``mosi``, ``sims``, ``iemocap``).
        flags: values from named CLI flags, as dotted keys (``{"seed": 1}``).
        overrides: ``key=value`` strings; an unknown key is an error that suggests the closest valid key.
        extra_blocks: further top-level blocks of the method config to merge after the dataset blocks
            (``smoke`` in tests, ``quick`` in the `quick` sweep preset); a method without one is unchanged.
        schemas: the method's block schemas; the merged ``model``, ``loss`` and ``optim`` blocks are checked
            against those it has.

    Returns:
        The resolved config, read-only, its default blocks typed.

    Raises:
        ConfigError: a value of the wrong type or an unknown key, in one line naming it.
    """
    cfg = load_defaults()
    method_cfg = load_method_config(method)
    source = _config_name(method)
    blocks = OmegaConf.to_container(method_cfg.get("datasets", {}))
    if not isinstance(blocks, dict):
        raise ConfigError(f"`datasets:` in {source} must map dataset blocks to their settings")
    extra_blocks = tuple(dict.fromkeys(extra_blocks))
    extra = {name: method_cfg.get(name) for name in extra_blocks}
    held_back = {"datasets", *OPTIONAL_BLOCKS, *extra_blocks}
    method_body = OmegaConf.masked_copy(method_cfg, [str(k) for k in method_cfg if k not in held_back])
    set_struct_all(cfg, False)  # a method's config may add keys of its own (loss weights, model widths)
    cfg = merge_typed(cfg, method_body, source)
    cfg.method.name = method
    cfg.dataset = dataset
    set_struct_all(cfg, True)
    _open_free_form_blocks(cfg)
    for block in dataset_blocks(dataset, family):
        if blocks and block in blocks:
            cfg = merge_typed(cfg, blocks[block], f"the `datasets.{block}` block of {source}")
    for name, block in extra.items():
        if block is not None:
            cfg = merge_typed(cfg, block, f"the `{name}` block of {source}")
    if flags:
        dotted = [f"{k}={_to_dotlist_value(v)}" for k, v in flags.items() if v is not None]
        cfg = _merge_dotlist(cfg, dotted)
    cfg = _merge_dotlist(cfg, list(overrides))
    for name, schema in schemas.items() if schemas is not None else ():
        cfg[name] = typed_block(schema, cfg[name], name, method)
    OmegaConf.set_readonly(cfg, True)
    return cfg


# Blocks whose keys belong to a dataset or a policy and are checked there, not against the defaults.
FREE_FORM_BLOCKS: tuple[str, ...] = ("data.options", "policy")


def _open_free_form_blocks(cfg: DictConfig) -> None:
    for key in FREE_FORM_BLOCKS:
        node = OmegaConf.select(cfg, key)
        if isinstance(node, DictConfig):
            OmegaConf.set_struct(node, False)


def _to_dotlist_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return OmegaConf.to_yaml(value).strip() if isinstance(value, list | dict) else repr(value)


# ``trainer.max_epochs`` caps the run's stage and every stage without a cap of its own; a two-stage method's
# config caps its first stage in ``stages.<name>.trainer``. This pseudo-key caps every stage at once (a quick
# try): it sets ``trainer.max_epochs`` and each ``stages.<name>.trainer.max_epochs``, so the resolved config,
# and with it the run key, says what each stage trained. ``--max-epochs N`` is this override.
EPOCH_CAP_KEY: Final[str] = "trainer.max_epochs_all"


def _epoch_cap(cfg: DictConfig, value: str) -> DictConfig:
    """``cfg`` with every stage capped at ``value`` epochs."""
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{EPOCH_CAP_KEY} (--max-epochs) must be an integer >= 1, not '{text}'")
    cfg = _merge_dotlist(cfg, [f"trainer.max_epochs={int(text)}"])
    for stage in cfg.stages or {}:
        # A stage block may be empty (`main: {}`): force_add creates its `trainer` mapping.
        OmegaConf.update(cfg, f"stages.{stage}.trainer.max_epochs", int(text), force_add=True)
    return cfg


def _merge_dotlist(cfg: DictConfig, dotlist: list[str]) -> DictConfig:
    for item in dotlist:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. trainer.max_epochs=2)")
        if item.split("=", 1)[0].strip() == EPOCH_CAP_KEY:
            cfg = _epoch_cap(cfg, item.split("=", 1)[1])
            continue
        key = item.split("=", 1)[0].strip().lstrip("+")
        free = any(key.startswith(f"{block}.") for block in FREE_FORM_BLOCKS)
        if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING and not (free or item.startswith("+")):
            raise UnknownKeyError(key, [*all_keys(cfg), EPOCH_CAP_KEY], method=str(cfg.method.name))
        try:
            with open_dict(cfg) if item.startswith("+") else nullcontext():
                cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item.lstrip("+")]))  # type: ignore[assignment]
            _open_free_form_blocks(cfg)
        except OmegaConfBaseException as err:
            raise type_error(err, cfg, f"override '{item}'") from None
    return cfg


_MISSING = object()


def all_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every dotted key of ``cfg`` (blocks and leaves), in the config's order; interpolations unresolved."""
    keys: list[str] = []
    if isinstance(cfg, DictConfig):
        for k in cfg:
            full = f"{prefix}{k!s}"
            child = cfg._get_node(k)  # noqa: SLF001 - walk without resolving interpolations
            keys.append(full)
            if isinstance(child, DictConfig):
                keys.extend(all_keys(child, f"{full}."))
    return keys


def suggest_key(key: str, cfg: DictConfig) -> str | None:
    """The closest valid dotted key to ``key``, if any."""
    close = difflib.get_close_matches(key, all_keys(cfg), n=1)
    return close[0] if close else None


def config_hash(cfg: DictConfig) -> str:
    """SHA-256 of the parts of the resolved config that determine what is trained and measured."""
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    for dotted in NON_DETERMINING_KEYS:
        *parents, leaf = dotted.split(".")
        node: Any = data
        for p in parents:
            node = node.get(p, {})
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(data), sort_keys=True).encode()).hexdigest()


def save(cfg: DictConfig, path: Path) -> None:
    """Write the resolved config as YAML."""
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
