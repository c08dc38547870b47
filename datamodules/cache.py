"""The cache directory: file hashes remembered across runs and splits written once as memory-mapped arrays."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from msabench.core.io import atomic_write

if TYPE_CHECKING:
    from msabench.datamodules.base import SplitData

CACHE_ENV: Final[str] = "MSABENCH_CACHE"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$MSABENCH_CACHE``, else ``~/.cache/msabench``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "msabench"


def file_sha256(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """SHA-256 of a file, streamed; remembered per (path, size, mtime) so multi-GB files are hashed once.

    Args:
        path: the file.
        cache_dir: where the remembered digests live (see :func:`cache_root`); the memo is skipped if
            unwritable.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_path = cache_root(cache_dir) / "sha256.json"
    memo: dict[str, str] = {}
    try:
        memo = json.loads(memo_path.read_text())
        if key in memo:
            return memo[key]
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    value = digest.hexdigest()
    if stat.st_size >= 1 << 26:  # only worth remembering for large files
        memo[key] = value
        try:
            atomic_write(memo_path, json.dumps(memo, indent=0))
        except OSError:
            pass
    return value


def save_split_cache(directory: Path, splits: Mapping[str, SplitData]) -> None:
    """Write dense splits as ``<split>.<key>.npy`` files, atomically (never visible half-written)."""
    if directory.exists():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        for split, columns in splits.items():
            for key, col in columns.items():
                np.save(staging / f"{split}.{key}.npy", np.asarray(col), allow_pickle=False)
        (staging / "complete").write_text(json.dumps({s: sorted(c) for s, c in splits.items()}))
        os.replace(staging, directory)
    except OSError:
        if not directory.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # another process finished first


def build_split_cache(
    directory: Path,
    layout: Mapping[str, Mapping[str, tuple[tuple[int, ...], np.dtype]]],
    fill: Callable[[str, str, np.ndarray], None],
) -> None:
    """Write a cache like :func:`save_split_cache`, each array filled in place by ``fill`` (never in RAM).

    Args:
        directory: the cache directory (nothing is done if it exists).
        layout: per split, per key, the array's shape and dtype.
        fill: called as ``fill(split, key, out)`` with ``out`` a writable memory-mapped array to fill.
    """
    if directory.exists():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        for split, columns in layout.items():
            for key, (shape, dtype) in columns.items():
                out = np.lib.format.open_memmap(
                    staging / f"{split}.{key}.npy", mode="w+", dtype=dtype, shape=tuple(shape)
                )
                fill(split, key, out)
                out.flush()
                del out
        (staging / "complete").write_text(json.dumps({s: sorted(c) for s, c in layout.items()}))
        os.replace(staging, directory)
    except OSError:
        if not directory.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # another process finished first


def load_split_cache(directory: Path) -> dict[str, SplitData] | None:
    """Memory-map a cache written by :func:`save_split_cache`; None if there is none."""
    marker = directory / "complete"
    if not marker.is_file():
        return None
    keys = json.loads(marker.read_text())
    return {
        split: {key: np.load(directory / f"{split}.{key}.npy", mmap_mode="r") for key in split_keys}
        for split, split_keys in keys.items()
    }
