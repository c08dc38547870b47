"""Parsers of the lists users type on the command line and in sweep files.

Shared by the sweeps and the leaderboard, which must not import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from msabench.errors import ConfigError

# A grid's list (seeds, rates per protocol) is capped: a slip such as a rate step of 1e-7 would otherwise
# expand into millions of runs before anything says so.
MAX_LIST_LENGTH: Final[int] = 1000


def check_count(count: int, what: str, items: str, fix: str = "give a shorter range") -> None:
    """Refuse a list of more than :data:`MAX_LIST_LENGTH` items, in one line saying how many."""
    if count > MAX_LIST_LENGTH:
        raise ConfigError(f"{what} gives {count:,} {items}, more than {MAX_LIST_LENGTH:,}: {fix}")


def parse_seeds(value: Any) -> tuple[int, ...]:
    """``"1111:1113"`` (inclusive), ``"1111,1112"``, an integer or a list of them."""
    if isinstance(value, bool):
        raise ConfigError(f"cannot read seeds from {value!r}")
    if isinstance(value, int):
        return (value,)
    if isinstance(value, str):
        text = value.strip()
        try:
            if ":" in text:
                start, stop = (int(p) for p in text.split(":"))
            else:
                seeds = tuple(int(p) for p in text.split(",") if p.strip())
        except ValueError:
            raise ConfigError(f"cannot read seeds from '{value}': use 1111,1112,1113 or 1111:1113") from None
        if ":" in text:
            if stop < start:
                raise ConfigError(
                    f"seed range '{value}' runs backwards: write the first seed first (e.g. {stop}:{start})"
                )
            check_count(stop - start + 1, f"seed range '{value}'", "seeds")
            return tuple(range(start, stop + 1))
        if not seeds:
            raise ConfigError("no seeds given: use 1111,1112,1113 or 1111:1113")
        return seeds
    if isinstance(value, Sequence):
        return tuple(s for item in value for s in parse_seeds(item))
    raise ConfigError(f"cannot read seeds from {value!r}: use 1111,1112,1113 or 1111:1113")
