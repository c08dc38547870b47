"""Evaluation settings: one protocol at one point (a rate or a condition) under one mask seed."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from fractions import Fraction

from msabench.core.vocabulary import (
    ALL_CONDITIONS,
    MAX_INTER_RATE,
    MAX_INTRA_RATE,
    MISSING_CONDITIONS,
    MODALITY_LETTERS,
    PROTOCOL_NAMES,
    ProtocolName,
)
from msabench.errors import ConfigError, UnknownNameError

__all__ = [
    "ALL_CONDITIONS",
    "MAX_INTER_RATE",
    "MISSING_CONDITIONS",
    "ProtocolName",
    "Setting",
    "normalize_condition",
]


def normalize_condition(condition: str) -> str:
    """Canonical form of a condition: its letters in (t, a, v) order, e.g. ``'vt'`` -> ``'tv'``.

    Raises:
        ConfigError: letters other than t/a/v, repeated letters, or none.
    """
    letters = condition.strip().lower().replace("l", "t")  # papers write text as "l"
    if not letters or set(letters) - set(MODALITY_LETTERS) or len(set(letters)) != len(letters):
        raise ConfigError(
            f"invalid condition '{condition}': use one to three distinct letters of t (text), a (audio), "
            "v (vision), e.g. --condition ta"
        )
    return "".join(c for c in "tav" if c in letters)


@dataclass(frozen=True)
class Setting:
    """A protocol at one point.

    Attributes:
        protocol: ``complete`` (nothing dropped), ``intra`` (steps dropped inside each modality at ``rate``),
            ``inter`` (whole modalities dropped, sample-level missing rate ``rate``), ``condition`` (a fixed
            set of available modalities) or ``stochastic`` (whole-modality plus frame drops, the S1
            distribution).
        rate: the rate of ``intra`` (in [0, 1]) or ``inter`` (in [0, 2/3]); None otherwise.
        condition: the available modalities of ``condition`` in (t, a, v) letters; None otherwise.
        mask_seed: the seed of the counter-based masks; every method sees the same masks for the same seed.
    """

    protocol: ProtocolName
    rate: float | None = None
    condition: str | None = None
    mask_seed: int = 1111

    def __post_init__(self) -> None:
        match self.protocol:
            case "intra":
                _check_rate(self.rate, MAX_INTRA_RATE, "intra")
            case "inter":
                _check_rate(self.rate, MAX_INTER_RATE, "inter")
            case "condition":
                if self.condition is None:
                    raise ConfigError("the condition protocol needs a condition, e.g. --condition ta")
                object.__setattr__(self, "condition", normalize_condition(self.condition))
            case "complete" | "stochastic":
                pass
            case _:
                raise UnknownNameError("protocol", str(self.protocol), PROTOCOL_NAMES)

    @property
    def drops_tokens(self) -> bool:
        """Whether the setting removes some tokens of a present text (contextual text is re-encoded)."""
        return (self.protocol == "intra" and bool(self.rate)) or self.protocol == "stochastic"

    @property
    def removes_nothing(self) -> bool:
        """Whether the setting leaves every sample complete (``complete``, rate 0, condition ``tav``)."""
        match self.protocol:
            case "complete":
                return True
            case "intra" | "inter":
                return not self.rate
            case "condition":
                return self.condition == "".join(MODALITY_LETTERS)
            case _:
                return False

    @property
    def name(self) -> str:
        """Short readable name, e.g. ``intra@0.3``, ``inter@0.2``, ``condition:ta``."""
        match self.protocol:
            case "intra" | "inter":
                return f"{self.protocol}@{self.rate:g}"
            case "condition":
                return f"condition:{self.condition}"
            case _:
                return self.protocol


def _check_rate(rate: float | None, upper: float, protocol: str) -> None:
    if rate is None:
        raise ConfigError(f"the {protocol} protocol needs a rate, e.g. --rate 0.3")
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ConfigError(f"the {protocol} rate must be a number, not {rate!r}")
    # The bound is exact (2/3 is no decimal): a rate above it by more than float rounding is refused, not
    # clipped, because the rate names the setting in every row. The message prints the bound as a fraction
    # and with six digits, so that a refused 0.6667 is visibly above it.
    if not 0.0 <= float(rate) <= upper + 1e-9:
        bound = rate_bound(upper)
        hint = " (every sample keeps at least one of three modalities)" if protocol == "inter" else ""
        raise ConfigError(f"rate {rate:g} is out of range for {protocol}: use 0 <= rate <= {bound}{hint}")


def rate_bound(upper: float) -> str:
    """A rate bound as users can type it: ``1``, or ``2/3 (0.666667)``."""
    fraction = Fraction(upper).limit_denominator(12)
    if fraction.denominator == 1:
        return str(fraction.numerator)
    return f"{fraction} ({upper:.6f})"
