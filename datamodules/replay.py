"""Random draws replayed in row blocks: the same values as one whole draw, without holding the whole array.

A numpy generator draws sequentially: an array of shape (n, ...) drawn in consecutive row blocks holds the
same values as drawn at once (its bit generator, integer buffer included, carries over between calls). A
:class:`Stream` walks the sequence of arrays a generator draws: arrays small enough are drawn whole, and for a
large one it notes the generator's state where the array begins, then draws it block by block only to move
past it, so the next array starts where it always did. The :class:`Replay` it returns draws the array's rows
again, block by block, from the noted state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

Draw = Callable[[np.random.Generator, int, int], np.ndarray]  # (generator, start, stop) -> rows start:stop


class Replay:
    """One array's draws, replayed in consecutive row blocks from the state where the whole draw began."""

    def __init__(self, state: Mapping[str, Any], draw: Draw) -> None:
        self._rng = np.random.Generator(np.random.PCG64())
        self._rng.bit_generator.state = state
        self._draw = draw

    def rows(self, start: int, stop: int) -> np.ndarray:
        """The rows ``start:stop`` (each call starts where the previous one stopped)."""
        return self._draw(self._rng, start, stop)


class Stream:
    """The sample generator: small arrays drawn whole; per-step arrays noted for replay, skipped in blocks."""

    def __init__(self, rng: np.random.Generator, n: int, block: int) -> None:
        self.rng, self.n, self.block = rng, n, block

    def whole(self, draw: Draw) -> np.ndarray:
        """An array drawn whole now (rows 0 to n), in its place in the sequence."""
        return draw(self.rng, 0, self.n)

    def rows(self, draw: Draw, observe: Callable[[int, int, np.ndarray], None] | None = None) -> Replay:
        """An array to replay in blocks later; the generator moves past it now (``observe`` sees each)."""
        replay = Replay(copy.deepcopy(self.rng.bit_generator.state), draw)
        for start in range(0, self.n, self.block):
            stop = min(start + self.block, self.n)
            values = draw(self.rng, start, stop)
            if observe is not None:
                observe(start, stop, values)
        return replay
