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
from pathlib import Path
from typing import Any, BinaryIO

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
        "_frombuffer": numeric._frombuffer,
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

    def __init__(self, file: BinaryIO, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")  # latin1 decodes numpy arrays pickled by Python 2
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        """Return an admitted global; refuse anything else before it is imported."""
        try:
            return _ALLOWED[(module, name)]
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


def safe_load(file: str | Path | BinaryIO, *, source: str | None = None) -> Any:
    """Unpickle plain data from a path or binary file object.

    Args:
        file: a path or a binary file object.
        source: how to name the file in error messages (default: the path).

    Returns:
        The unpickled object.

    Raises:
        UnsafePickleError: the pickle references something other than plain data.
        DataFormatError: the file is not a pickle at all.
    """
    if isinstance(file, str | Path):
        with open(file, "rb") as handle:
            return safe_load(handle, source=source or str(file))
    name = source or getattr(file, "name", "<pickle>")
    try:
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
