"""Counter-based hashing: the only source of randomness of every protocol and policy.

A draw is a pure function of its key, the sample's index and a column counter (a time step, a modality, ...):

    bits = hash24(key, index, column)

so a mask never depends on batch size, batch order, worker count or device, and nothing is stored. The hash
works on ``torch.int64`` tensors holding 32-bit words: every product is a 32-bit word times a 31-bit odd
multiplier, below 2^63, so no step overflows and CPU and CUDA agree bit for bit. A pure-Python twin
(:func:`mix_int`) folds the scalar part of the key once per call and pins the definition in the tests.

Draws are compared as integers: ``drop = bits < threshold(rate)`` is exactly ``u < rate`` for the uniform
``u = bits / 2**24`` (exact in float32), and because every rate is compared with the same ``bits``, masks are
nested across rates.
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import Tensor

MASK32: Final[int] = 0xFFFFFFFF
UNIFORM_BITS: Final[int] = 24
ONE: Final[int] = 1 << UNIFORM_BITS  # the integer that stands for probability 1
# Three rounds of xorshift-multiply. The multipliers are odd (each round is a bijection of 32-bit words) and
# below 2^31 (a product with a 32-bit word fits in a signed 64-bit integer). Avalanche bias measured at the
# noise floor of 2e5 random inputs.
_MULTIPLIERS: Final[tuple[int, int, int]] = (0x7FEB352D, 0x6A09E667, 0x3C6EF373)
_SHIFTS: Final[tuple[int, int, int, int]] = (16, 15, 16, 15)
# Keys are hashed before they are absorbed, so that two samples whose states differ by a small XOR do not get
# shifted copies of each other's rows; the salt keeps key 0 away from the fixed point mix(0) = 0.
_SALT: Final[int] = 0x9E3779B9
_SEED: Final[int] = 0x2545F491

# Domains keep evaluation masks, per-epoch and static training draws apart, even for equal seeds.
DOMAIN_EVAL: Final[int] = 1
DOMAIN_TRAIN: Final[int] = 2
DOMAIN_TRAIN_STATIC: Final[int] = 3

Key = tuple[int, ...]


def mix_int(x: int) -> int:
    """Mix a 32-bit word (a Python int): the reference definition of the hash."""
    x &= MASK32
    for multiplier, shift in zip(_MULTIPLIERS, _SHIFTS, strict=False):
        x ^= x >> shift
        x = (x * multiplier) & MASK32
    return x ^ (x >> _SHIFTS[-1])


def mix(x: Tensor) -> Tensor:
    """:func:`mix_int` on an int64 tensor of 32-bit words, elementwise."""
    for multiplier, shift in zip(_MULTIPLIERS, _SHIFTS, strict=False):
        x = x ^ (x >> shift)
        x = (x * multiplier) & MASK32
    return x ^ (x >> _SHIFTS[-1])


def _words(value: int) -> tuple[int, int]:
    """Split a Python int into two 32-bit words (modulo 2^64, so negative seeds are fine too)."""
    value %= 1 << 64
    return value & MASK32, value >> 32


def fold_key(key: Key) -> int:
    """Fold a tuple of Python ints, each absorbed as two words, into a 32-bit state."""
    state = _SEED
    for value in key:
        for word in _words(value):
            state = mix_int(state ^ mix_int(word ^ _SALT))
    return state


def hash32(key: Key, index: Tensor, columns: int | None = None) -> Tensor:
    """32-bit hashes for each sample (and each column), a pure function of ``(key, index, column)``.

    Args:
        key: the scalar part of the key (domain, seeds, split, stream, modality ...).
        index: (B,) integer sample ids; the result lives on their device.
        columns: None for one hash per sample, else the number of column counters 0..columns-1.

    Returns:
        int64 tensor of shape (B,) or (B, columns) with values in [0, 2^32).

    """
    per_sample = mix(mix((index.to(torch.int64) & MASK32) ^ _SALT) ^ fold_key(key))
    if columns is not None:
        counter = torch.arange(columns, dtype=torch.int64, device=index.device)
        per_sample = mix(per_sample[:, None] ^ mix(counter ^ _SALT))
    return per_sample


def hash24(key: Key, index: Tensor, columns: int | None = None) -> Tensor:
    """Return the top 24 bits of :func:`hash32`: draws in [0, 2^24) that stand for uniforms."""
    return hash32(key, index, columns) >> (32 - UNIFORM_BITS)


def uniform(bits: Tensor) -> Tensor:
    """Convert 24-bit draws to the float32 uniforms in [0, 1) they stand for (exactly)."""
    return bits.to(torch.float32) * (1.0 / ONE)


def threshold(rate: float) -> int:
    """Integer threshold t with ``bits < t`` exactly when ``bits / 2**24 < rate`` (rate in [0, 1])."""
    return min(max(math.ceil(rate * ONE), 0), ONE)


def scaled_threshold(bits: Tensor, upper: float) -> Tensor:
    """Thresholds of the rates ``upper * bits / 2**24`` (rates ~ U(0, upper)), in integer arithmetic only."""
    scale = round(upper * ONE)
    return (bits * scale + (ONE - 1)) >> UNIFORM_BITS


def rank_within(scores: Tensor) -> Tensor:
    """Rank of each entry along dim 0 of a (n,) or (n, c) tensor of 32-bit scores (0 = lowest).

    Ties are broken by position: score and position are merged into one int64 key (score * n + position < 2^63
    for n < 2^31), so the order is unique and ``argsort`` agrees on every device.
    """
    n = scores.shape[0]
    position = torch.arange(n, device=scores.device)
    if scores.dim() == 2:
        position = position[:, None].expand_as(scores)
    order = torch.argsort(scores * n + position, dim=0)
    return torch.empty_like(order).scatter_(0, order, position.contiguous())
