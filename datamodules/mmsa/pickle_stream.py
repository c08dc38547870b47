"""Pickles written with holes: large arrays' bytes are left out and filled in place afterwards, never in RAM.

A pickle of a dict of numpy arrays (protocol 4, the synthetic datasets' format) stores each array's bytes as
one ``BINBYTES`` payload. Python's pickler writes payloads of at least one frame (64 KiB) straight to the
file, outside any frame, so their position is known when they are written. :func:`write_with_holes` pickles a
tree whose large arrays are :class:`Hole` s (shape and dtype only): it writes every opcode the standard
pickler would (the same bytes, byte for byte, as ``pickle.dump`` of the filled arrays), skips each hole's
payload with a seek, and returns the holes as writable memory-mapped arrays over the file. Filling them in
blocks writes the data once, straight into the pickle.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from struct import pack
from typing import IO, Any, Final, cast

import numpy as np

from msabench.core.io import atomic_file

PROTOCOL: Final[int] = 4
# A bytes payload of at least this size is written outside frames (by CPython's pickle and _pickle alike).
FRAME_SIZE_TARGET: Final[int] = 64 * 1024


class Hole:
    """An array left out of a pickle, filled after writing through :attr:`array` (a memory map of the file).

    Args:
        shape: the array's shape.
        dtype: its dtype (numeric; object arrays are small and pickled as they are).
    """

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.offset: int | None = None
        self.array: np.memmap | None = None

    @property
    def nbytes(self) -> int:
        """Size of the array's bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


class _Payload:
    """The bytes of a hole as the pickler meets them (saved like ``bytes``, written as a seek)."""

    def __init__(self, hole: Hole) -> None:
        self.hole = hole


class _HolePickler(pickle._Pickler):  # the pure-Python pickler: its framing is open to a subclass
    dispatch = pickle._Pickler.dispatch.copy()
    # Methods of the pure-Python Pickler that typeshed does not declare.
    _write_large_bytes: Callable[[bytes, bytes], None]
    memoize: Callable[[Any], None]

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file, protocol=PROTOCOL)
        self._file = file
        self.holes: list[Hole] = []

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, Hole):
            return NotImplemented
        # Exactly numpy's own reduction of a C-ordered array: the same callable, arguments (whose one-byte
        # tag is a shared object, memoised like numpy's) and dtype object, so the memo and bytes agree.
        func, args, state = cast("tuple[Any, ...]", np.empty(0, obj.dtype).__reduce__())
        return func, args, (state[0], tuple(obj.shape), state[2], False, _Payload(obj))

    def _save_payload(self, obj: _Payload) -> None:
        n = obj.hole.nbytes
        if n < FRAME_SIZE_TARGET:
            raise ValueError(
                f"a hole of {n} bytes would sit inside a pickle frame (minimum {FRAME_SIZE_TARGET})"
            )
        header = pickle.BINBYTES8 + pack("<Q", n) if n > 0xFFFFFFFF else pickle.BINBYTES + pack("<I", n)
        # Ends the current frame and writes the header to the file.
        self._write_large_bytes(header, b"")
        obj.hole.offset = self._file.tell()
        self._file.seek(n, os.SEEK_CUR)
        self.holes.append(obj.hole)
        self.memoize(obj)

    # typeshed types the table with the C Pickler as receiver; the pure-Python pickler calls its entries
    # with itself.
    dispatch[_Payload] = _save_payload  # type: ignore[assignment]


def write_with_holes(tree: Any, file: IO[bytes]) -> list[Hole]:
    """Pickle ``tree`` into ``file`` (protocol 4), leaving each :class:`Hole` 's bytes to be filled.

    Returns:
        The holes met, each with :attr:`Hole.array` a writable memory map of its place in the file (zeros
        until written). Flush them before closing the file.

    Raises:
        ValueError: a hole smaller than a pickle frame (it would be written inside one).
    """
    pickler = _HolePickler(file)
    pickler.dump(tree)
    file.flush()
    for hole in pickler.holes:
        assert hole.offset is not None
        hole.array = np.memmap(file.name, dtype=hole.dtype, mode="r+", offset=hole.offset, shape=hole.shape)
    return pickler.holes


def write_pickle(data: dict[str, Any], path: str | Path) -> Path:
    """Write an MMSA-layout dict as a pickle, atomically (a concurrent reader never sees half a file)."""
    with atomic_file(path) as handle:
        pickle.dump(data, handle, protocol=PROTOCOL)
    return Path(path)
