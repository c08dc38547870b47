"""A restricted unpickler: loading a data file never runs code from it.

A pickle is a small program: every class or function it names is imported and called while loading, so a
crafted file can run anything. :func:`safe_load` admits only what plain data needs: numpy arrays (numeric and
object arrays of strings), their dtypes and scalars, built-in containers and scalars. Any other global raises
:class:`~msabench.errors.UnsafePickleError` naming it, before it is imported or called.
"""

from __future__ import annotations

import codecs
import collections
import copyreg
import io
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from msabench.errors import DataFormatError, UnsafePickleError


def _numpy_internals() -> dict[str, Any]:
    # numpy 2 moved numpy.core to numpy._core; pickles written by either name the module they were written
    # under.
    try:
        from numpy._core import multiarray, numeric  # type: ignore[attr-defined]
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    return {
        "_reconstruct": multiarray._reconstruct,
        "scalar": multiarray.scalar,
        "_frombuffer": numeric._frombuffer,  # type: ignore[attr-defined]  # private, not in numpy's stubs
    }


def _allowed_globals() -> dict[tuple[str, str], Any]:
    internals = _numpy_internals()
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = internals["_reconstruct"]
        allowed[(f"{package}.multiarray", "scalar")] = internals["scalar"]
        allowed[(f"{package}.numeric", "_frombuffer")] = internals["_frombuffer"]
    # Protocol-2 pickles (Python 2 era, or numpy's compatibility path) spell builtins `__builtin__` and encode
    # bytes through `_codecs.encode`; copyreg rebuilds plain objects from already-admitted classes.
    for builtins_name in ("builtins", "__builtin__"):
        for name, obj in (
            ("set", set),
            ("frozenset", frozenset),
            ("complex", complex),
            ("bytearray", bytearray),
            ("slice", slice),
            ("range", range),
        ):
            allowed[(builtins_name, name)] = obj
    allowed[("_codecs", "encode")] = codecs.encode
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    for copyreg_name in ("copyreg", "copy_reg"):
        allowed[(copyreg_name, "_reconstructor")] = copyreg._reconstructor  # type: ignore[attr-defined]
    return allowed


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals plain numpy data needs.

    Args:
        file: a binary file object positioned at the start of the pickle.
        source: how to name the file in error messages.
    """

    _allowed = _ALLOWED

    def __init__(self, file: BinaryIO, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")  # latin1 decodes numpy arrays pickled by Python 2
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return an admitted global; refuse anything else before it is imported."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load {self._source}: it references '{module}.{name}', and only numpy arrays, "
                "built-in containers and scalars are accepted (a pickle can run code while loading; "
                "re-export "
                "the data as plain arrays)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: plain data pickles never carry them."""
        raise UnsafePickleError(
            f"refused to load {self._source}: it uses persistent ids, which plain data never does"
        )


# Arrays smaller than this are read into RAM as usual (the many small ones cost more as files than they save).
SPILL_THRESHOLD = 1 << 24


@dataclass(frozen=True)
class _Spilled:
    """A large byte string of the pickle, copied to ``path`` instead of into memory."""

    path: Path
    nbytes: int


class SpillingUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """The restricted unpickler, with large arrays copied to files and memory-mapped instead of read into RAM.

    A byte string of ``threshold`` bytes or more (an array's data: numpy pickles ``tobytes()`` of the array,
    or a ``PickleBuffer`` under protocol 5) is streamed into its own file under ``spill_dir``, and the array
    it belongs to is a writable ``np.memmap`` of that file. So converting a 9 GB MOSEI pickle holds
    file-backed pages the kernel can drop, not 9 GB of anonymous memory. Runs on the pure-Python unpickler,
    which costs time only per opcode (a few per array, one per string of the object arrays).

    Args:
        file: a binary file object positioned at the start of the pickle.
        source: how to name the file in error messages.
        spill_dir: an existing directory for the spilled arrays (the caller removes it when done).
        threshold: the smallest byte string that is spilled (default :data:`SPILL_THRESHOLD`).
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    # Bound by the pure-Python Unpickler's load() before any opcode runs; typeshed does not declare them.
    read: Callable[[int], bytes]
    append: Callable[[Any], None]

    def __init__(self, file: BinaryIO, source: str, spill_dir: Path, threshold: int | None = None) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source
        self._spill_dir = Path(spill_dir)
        self._threshold = SPILL_THRESHOLD if threshold is None else threshold
        self._count = 0
        self._allowed = {
            **_ALLOWED,
            **{
                (f"{package}.multiarray", "_reconstruct"): self._reconstruct
                for package in ("numpy.core", "numpy._core")
            },
            **{
                (f"{package}.numeric", "_frombuffer"): self._frombuffer
                for package in ("numpy.core", "numpy._core")
            },
        }

    find_class = RestrictedUnpickler.find_class
    persistent_load = RestrictedUnpickler.persistent_load

    def _bytes(self, size: int) -> bytes | _Spilled:
        if size < self._threshold:
            data = self.read(size)
            if len(data) != size:
                raise pickle.UnpicklingError("pickle data was truncated")
            return data
        path = self._spill_dir / f"{self._count}.bin"
        self._count += 1
        left = size
        with open(path, "wb") as out:
            while left:
                chunk = self.read(min(left, 1 << 24))
                if not chunk:
                    raise pickle.UnpicklingError("pickle data was truncated")
                out.write(chunk)
                left -= len(chunk)
        return _Spilled(path, size)

    def _load_binbytes(self) -> None:
        (size,) = struct.unpack("<I", self.read(4))
        self.append(self._bytes(size))

    def _load_binbytes8(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        self.append(self._bytes(size))

    # typeshed types the table with the C Unpickler as receiver; the pure-Python one calls its entries
    # with itself.
    dispatch[pickle.BINBYTES[0]] = _load_binbytes  # type: ignore[assignment]
    dispatch[pickle.BINBYTES8[0]] = _load_binbytes8  # type: ignore[assignment]
    dispatch[pickle.BYTEARRAY8[0]] = _load_binbytes8  # type: ignore[assignment]

    def _reconstruct(self, cls: Any, shape: Any, dtype: Any) -> _PendingArray:
        if cls is not np.ndarray:
            raise pickle.UnpicklingError(f"refused to rebuild a {cls!r}: only numpy arrays are accepted")
        return _PendingArray()

    def _frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Literal["C", "F"]) -> np.ndarray:
        if isinstance(buffer, _Spilled):
            return np.memmap(buffer.path, dtype=dtype, mode="r+", shape=tuple(shape), order=order)
        return _ALLOWED[("numpy.core.numeric", "_frombuffer")](buffer, dtype, shape, order)

    def load(self) -> Any:
        """Unpickle, then swap every array rebuilt from spilled bytes for its memory map."""
        return _finish(super().load())


class _PendingArray:
    """Stands for an array until the pickle's BUILD gives its state (then :func:`_finish` makes it)."""

    array: np.ndarray | None = None

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        version, shape, dtype, fortran, raw = state if len(state) == 5 else (1, *state)
        order: Literal["C", "F"] = "F" if fortran else "C"
        if isinstance(raw, _Spilled):
            self.array = np.memmap(raw.path, dtype=dtype, mode="r+", shape=tuple(shape), order=order)
        else:
            array = np.ndarray.__new__(np.ndarray, (0,), np.uint8)
            array.__setstate__(state)
            self.array = array


def _finish(obj: Any) -> Any:
    if isinstance(obj, _PendingArray):
        return obj.array
    if isinstance(obj, dict):
        return {key: _finish(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_finish(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(value) for value in obj)
    return obj


def safe_load(
    file: str | Path | BinaryIO, *, source: str | None = None, spill_dir: str | Path | None = None
) -> Any:
    """Unpickle plain data from a path or binary file object.

    Args:
        file: a path or a binary file object.
        source: how to name the file in error messages (default: the path).
        spill_dir: a directory to hold large arrays as memory-mapped files instead of in RAM
            (:class:`SpillingUnpickler`); the caller removes it once the arrays are no longer used.

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: the pickle references something other than plain data.
        DataFormatError: the file is not a pickle at all.
    """
    if isinstance(file, str | Path):
        with open(file, "rb") as handle:
            return safe_load(handle, source=source or str(file), spill_dir=spill_dir)
    name = source or getattr(file, "name", "<pickle>")
    try:
        if spill_dir is not None:
            return SpillingUnpickler(file, str(name), Path(spill_dir)).load()
        return RestrictedUnpickler(file, str(name)).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataFormatError(
            f"{name} is not a readable pickle of numpy arrays ({type(exc).__name__}: {exc})"
        ) from None


def safe_loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle plain data from bytes (see :func:`safe_load`)."""
    return safe_load(io.BytesIO(data), source=source)


def load_npy(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` file; object arrays (stored as a pickle inside) go through the restricted unpickler.

    Raises:
        UnsafePickleError: an object array whose pickle references something other than plain data.
        DataFormatError: the file is not a ``.npy`` file.
    """
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if (
                read_header is None
            ):  # format 3.0 (utf-8 field names) never holds object arrays from numpy's writer
                handle.seek(0)
                return np.load(handle, allow_pickle=False)
            shape, fortran_order, dtype = read_header(handle)
        except ValueError as exc:
            raise DataFormatError(f"{path} is not a .npy file ({exc})") from None
        if not dtype.hasobject:
            handle.seek(0)
            return np.load(handle, allow_pickle=False)
        array = safe_load(handle, source=str(path))
    if not isinstance(array, np.ndarray):
        raise DataFormatError(f"{path} holds a {type(array).__name__}, not an array")
    return array.reshape(shape, order="F" if fortran_order else "C")
