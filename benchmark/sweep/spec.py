"""The grid spec: sweep files and flags parsed into :class:`SweepSpec`, checked against a structured schema.

A sweep file (or a packaged preset, ``quick``, ``synthetic``, ``mosi``, ...) looks like::

    description: ...
    grid:                       # one mapping, or a list of them (their runs are merged)
      methods: all              # names or all
      datasets: [synthetic]
      protocols: [intra, inter] # optional: keeps only these protocols' settings
      rates: {intra: "0.0:0.9:0.1", inter: "0.0:0.6:0.1"}   # or one spec for every protocol
      conditions: [t, a, v, ta, tv, av, tav]                 # settings of the inter protocol
      seeds: [1111, 1112, 1113]                              # or "1111:1113"
      train_policy: paper       # a policy name, a list, or paper (each method's own)
    overrides: [trainer.max_epochs=5]                        # key=value for every run
    blocks: [quick]             # optional blocks of each method's config.yaml that every run merges
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Final

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from msabench.config import OPTIONAL_BLOCKS
from msabench.core.parse import check_count, parse_seeds
from msabench.core.vocabulary import ALL_CONDITIONS, MAX_INTER_RATE, RATE_PROTOCOLS
from msabench.errors import ConfigError, UnknownNameError
from msabench.protocols.settings import Setting, normalize_condition


# The leaves hold strings, numbers, lists or (rates) a mapping, which OmegaConf's unions cannot express: the
# schemas fix the keys (a typo is an error that names the right key) and the types that are one type.
@dataclass
class GridSchema:
    """The leaves of one ``grid:`` block."""

    methods: Any = "all"
    datasets: Any = "synthetic"
    protocols: Any = None
    rates: Any = None
    conditions: Any = None
    seeds: Any = None
    train_policy: Any = "paper"


@dataclass
class SweepFileSchema:
    """The top level of a sweep file."""

    grid: Any = None
    description: str | None = None
    overrides: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    workers: int | None = None
    output: str | None = None


GRID_KEYS: Final[tuple[str, ...]] = tuple(f.name for f in fields(GridSchema))
FILE_KEYS: Final[tuple[str, ...]] = tuple(f.name for f in fields(SweepFileSchema))


def _validated(schema: type, data: Mapping[Any, Any], kind: str, where: str) -> dict[str, Any]:
    """``data`` merged onto the structured ``schema``: unknown keys and wrongly typed values are one line."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), dict(data))
    except ConfigKeyError as err:
        key = str(getattr(err, "key", None) or "")
        raise UnknownNameError(kind, key, [f.name for f in fields(schema)]) from None
    except ValidationError as err:
        full_key = getattr(err, "full_key", None) or getattr(err, "key", "?")
        reason = str(getattr(err, "msg", err)).strip().splitlines()[0]  # OmegaConf appends the key's context
        raise ConfigError(f"{full_key} in {where}: {reason}") from None
    out = OmegaConf.to_container(merged, resolve=True)
    assert isinstance(out, dict)
    return {str(k): v for k, v in out.items()}


@dataclass(frozen=True)
class Grid:
    """One block of a sweep: every combination of its leaves.

    Attributes:
        methods: method names, or ``("all",)``.
        datasets: dataset names.
        rates: per rate protocol (``intra``, ``inter``), its rates.
        conditions: availability conditions (settings of the ``inter`` protocol), in (t, a, v) letters.
        seeds: training seeds; empty for the config's seed.
        train_policies: policy names or ``paper`` (each method's own).
    """

    methods: tuple[str, ...] = ("all",)
    datasets: tuple[str, ...] = ("synthetic",)
    rates: tuple[tuple[str, tuple[float, ...]], ...] = ()
    conditions: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    train_policies: tuple[str, ...] = ("paper",)

    def settings(self) -> list[Setting]:
        """The test settings, intra rates first, then inter rates, then the conditions."""
        out: list[Setting] = []
        for protocol, rates in self.rates:
            out += [Setting(protocol, rate=r) for r in rates]  # type: ignore[arg-type]
        out += [Setting("condition", condition=c) for c in self.conditions]
        return out


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep: its grids, the overrides every run gets and the method-config blocks it merges.

    ``blocks`` name optional top-level blocks of each method's ``config.yaml`` (``quick``: the method's budget
    in the `quick` preset), merged after the dataset blocks and before the overrides.
    """

    grids: tuple[Grid, ...]
    overrides: tuple[str, ...] = ()
    name: str = "sweep"
    workers: int | None = None
    output: str | None = None
    blocks: tuple[str, ...] = ()


def parse_rates(value: Any) -> tuple[float, ...]:
    """``"0.0:0.9:0.1"`` (start:stop:step, stop included), ``"0,0.3,0.5"``, a number or a list of them."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value),)
    if isinstance(value, str):
        text = value.strip()
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ConfigError(f"rate range '{value}' must be start:stop:step, e.g. 0.0:0.9:0.1")
            start, stop, step = (_number(p, value) for p in parts)
            if step <= 0 or stop < start:
                raise ConfigError(f"rate range '{value}' needs step > 0 and stop >= start")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            check_count(count, f"rate range '{value}'", "rates", "give a larger step")
            return tuple(round(start + i * step, 10) for i in range(count))
        return tuple(_number(p, value) for p in text.split(",") if p.strip())
    if isinstance(value, Sequence):
        return tuple(r for item in value for r in parse_rates(item))
    raise ConfigError(f"cannot read rates from {value!r}: use 0.0:0.9:0.1 or a list such as 0,0.3,0.5")


def _number(text: str, whole: Any) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"'{text}' in '{whole}' is not a number") from None


def parse_names(value: Any) -> tuple[str, ...]:
    """``"a,b"`` or a list of names, lower-cased."""
    if isinstance(value, str):
        return tuple(p.strip().lower() for p in value.split(",") if p.strip())
    if isinstance(value, Sequence):
        return tuple(n for item in value for n in parse_names(item))
    raise ConfigError(f"cannot read names from {value!r}: use a comma-separated list")


SETTING_LEAVES = ("rates", "conditions")
"""Leaves that may be given empty: none of that kind of test setting (a sweep needs one setting at least)."""


def grid_from_leaves(leaves: Mapping[str, Any], where: str = "the grid") -> Grid:
    """A :class:`Grid` from ``grid:`` leaves (YAML or flags); unknown leaves are errors."""
    leaves = _validated(GridSchema, leaves, "grid key", where)
    for key, value in leaves.items():
        # An empty leaf given on purpose (`--methods ''`, `methods: []`) is a slip, never "the default". Only
        # the test settings may be emptied: `conditions: []` over a preset means no condition (rates only).
        if key in SETTING_LEAVES:
            continue
        if value is not None and not isinstance(value, bool | int | float) and not _has_items(value):
            raise ConfigError(f"{key} in {where} is empty: give at least one value (or leave {key} out)")
    protocols = parse_names(leaves["protocols"]) if leaves.get("protocols") is not None else None
    for p in protocols or ():
        if p not in RATE_PROTOCOLS:
            raise UnknownNameError("protocol", p, RATE_PROTOCOLS)
    raw_rates = leaves.get("rates")
    conditions = leaves.get("conditions")
    if isinstance(conditions, str) and conditions.strip().lower() == "all":
        condition_list: tuple[str, ...] = ALL_CONDITIONS
    else:
        condition_list = tuple(dict.fromkeys(normalize_condition(c) for c in parse_names(conditions or ())))
    if isinstance(raw_rates, Mapping):  # per protocol: {intra: 0:0.9:0.1, inter: 0:0.6:0.1}
        rates = {str(k).lower(): parse_rates(v) for k, v in raw_rates.items()}
        for p in rates:
            if p not in RATE_PROTOCOLS:
                raise UnknownNameError("protocol", p, RATE_PROTOCOLS)
        implied = tuple(rates)
    else:  # one spec for every listed protocol (intra when none is listed)
        targets = protocols if protocols is not None else ("intra",)
        rates = {p: parse_rates(raw_rates) for p in targets} if raw_rates is not None else {}
        implied = tuple(rates)
    if protocols is not None:
        active = protocols
    else:
        active = implied + (("inter",) if condition_list and "inter" not in implied else ())
    if condition_list and "inter" not in active:
        raise ConfigError(f"conditions in {where} are settings of the inter protocol: add inter to protocols")
    selected = tuple((p, tuple(sorted(set(rates[p])))) for p in RATE_PROTOCOLS if p in active and p in rates)
    for p, values in selected:
        bad = [r for r in values if not 0.0 <= r <= (MAX_INTER_RATE if p == "inter" else 1.0) + 1e-9]
        if bad:
            hint = (
                " (at most 2/3: every sample keeps a modality); give per-protocol rates, e.g. "
                "--rates intra=0:0.9:0.1 --rates inter=0:0.6:0.1"
                if p == "inter"
                else ""
            )
            raise ConfigError(f"rate {bad[0]:g} is out of range for {p} in {where}{hint}")
    for p in active:
        if p not in dict(selected) and not (p == "inter" and condition_list):
            raise ConfigError(
                f"protocol {p} in {where} has no rates: give rates (e.g. --rates {p}=0:0.6:0.1)"
            )
    conditions_out = condition_list if "inter" in active else ()
    if not selected and not conditions_out:
        raise ConfigError(f"{where} has no test setting: give rates and/or conditions (or --config quick)")
    policies = leaves.get("train_policy", "paper")
    return Grid(
        methods=parse_names(leaves.get("methods", "all")) or ("all",),
        datasets=parse_names(leaves.get("datasets", "synthetic")),
        rates=selected,
        conditions=conditions_out,
        seeds=parse_seeds(leaves["seeds"]) if leaves.get("seeds") is not None else (),
        train_policies=parse_names(policies) or ("paper",),
    )


def _has_items(value: Any) -> bool:
    """Whether a leaf names something: a string with a non-blank item, or a non-empty list or mapping."""
    if isinstance(value, str):
        return any(part.strip() for part in value.split(","))
    if isinstance(value, Mapping | Sequence):
        return len(value) > 0
    return True


def presets() -> list[str]:
    """Names of the packaged sweep presets (``benchmark/sweeps/*.yaml``)."""
    folder = resources.files("msabench").joinpath("sweeps")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_sweep_file(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """The YAML of a preset name or a file path, and the sweep's name."""
    path = Path(name_or_path)
    if path.exists():
        text, name = path.read_text(), path.stem
    else:
        # a bare name, or `sweeps/quick.yaml` as the docs write it: the packaged preset
        name = (
            path.stem.strip().lower()
            if path.suffix in (".yaml", ".yml")
            else str(name_or_path).strip().lower()
        )
        if name not in presets():
            if path.suffix in (".yaml", ".yml"):
                raise ConfigError(f"sweep file '{path}' does not exist (presets: {', '.join(presets())})")
            raise UnknownNameError("sweep preset", name, presets())
        text = resources.files("msabench").joinpath(f"sweeps/{name}.yaml").read_text()
    data = OmegaConf.to_container(OmegaConf.create(text), resolve=True)
    if not isinstance(data, dict) or "grid" not in data:
        raise ConfigError(
            f"sweep file '{name_or_path}' needs a top-level `grid:` mapping (or a list of them)"
        )
    for key in ("overrides", "blocks"):
        value = data.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            example = "[trainer.max_epochs=1]" if key == "overrides" else "[quick]"
            shape = "a mapping" if isinstance(value, dict) else f"{value!r}"
            raise ConfigError(
                f"`{key}:` in sweep file '{name_or_path}' must be a list of strings such as {example}, "
                f"not {shape}"
            )
    data = _validated(SweepFileSchema, data, "sweep file key", f"sweep file '{name_or_path}'")
    return data, name


def build_spec(
    config: str | Path | None = None,
    flags: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> SweepSpec:
    """A sweep from a preset or YAML file and/or flags.

    A flag replaces that leaf in every grid of the file; trailing ``overrides`` are appended to the file's.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    data: dict[str, Any] = {"grid": {}}
    name = "sweep"
    if config is not None:
        data, name = load_sweep_file(config)
    blocks = data["grid"] if isinstance(data["grid"], list) else [data["grid"]]
    for block in blocks:
        if block is not None and not isinstance(block, Mapping):
            raise ConfigError(
                f"`grid:` in {name} must be a mapping of leaves (methods, rates, ...) or a list of them, "
                f"not {block!r}"
            )
    grids = tuple(
        grid_from_leaves(
            {**(block or {}), **flags}, where=f"grid {i + 1} of {name}" if len(blocks) > 1 else name
        )
        for i, block in enumerate(blocks)
    )
    file_overrides = [str(o) for o in data.get("overrides") or ()]
    config_blocks = parse_names(data.get("blocks") or ())
    for block in config_blocks:
        if block not in OPTIONAL_BLOCKS:
            raise UnknownNameError("method-config block", block, OPTIONAL_BLOCKS)
    workers = data.get("workers")
    return SweepSpec(
        grids,
        (*file_overrides, *overrides),
        name,
        int(workers) if workers else None,
        data.get("output"),
        blocks=tuple(dict.fromkeys(config_blocks)),
    )
