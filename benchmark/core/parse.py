"""Parsers of the lists users type on the command line and in sweep files.

Shared by the sweeps and the leaderboard, which must not import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from msabench.errors import ConfigError


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
                return tuple(range(start, stop + 1))
            return tuple(int(p) for p in text.split(",") if p.strip())
        except ValueError:
            raise ConfigError(f"cannot read seeds from '{value}': use 1111,1112,1113 or 1111:1113") from None
    if isinstance(value, Sequence):
        return tuple(s for item in value for s in parse_seeds(item))
    raise ConfigError(f"cannot read seeds from {value!r}: use 1111,1112,1113 or 1111:1113")
