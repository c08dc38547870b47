"""Atomic file writing and file-name slugs: the one implementation every layer uses.

A file is written to a temporary name in its own directory, flushed to disk and renamed over the target, so
a reader (another worker, a crashed and restarted sweep, the leaderboard) sees either the old file or the
whole new one, never half of it.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO

from msabench.errors import ConfigError, OutputError

Content = bytes | str | Callable[[BinaryIO], object]


@functools.cache
def _file_mode() -> int:
    # Temporary files are created private (0600); the published file gets the mode a plain open() would
    # give, so results and caches are shared like any other file. Read once: os.umask can only be read by
    # setting it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """An open binary file that becomes ``path`` when the block succeeds, and is removed when it fails.

    For writers that need the file itself (its name, for memory maps of its regions), not only a handle.

    Yields:
        The temporary file, opened ``w+b`` in ``path``'s directory (created if needed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w+b", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, _file_mode())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, content: Content) -> Path:
    """Write ``content`` to ``path`` so that readers see either the old file or the whole new one.

    Args:
        path: the file to write; its directory is created if needed.
        content: bytes, text (written as UTF-8), or a function that writes into the open binary handle
            (for a large object streamed by its own writer, such as ``pickle.dump``).

    Returns:
        The path written.
    """
    with atomic_file(path) as handle:
        if isinstance(content, str):
            handle.write(content.encode("utf-8"))
        elif isinstance(content, bytes):
            handle.write(content)
        else:
            content(handle)  # type: ignore[arg-type]
    return Path(path)


def slug(text: object, keep: str = "-_.") -> str:
    """``text`` as a safe file-name part: letters, digits and the characters in ``keep``; the rest ``_``."""
    return "".join(c if c.isalnum() or c in keep else "_" for c in str(text))


def check_writable_dir(path: Path, flag: str) -> None:
    """Refuse, in one line, a directory that is neither writable nor creatable, before any work is done.

    Creates nothing that stays: the first existing ancestor gets a probe directory, removed at once. It lives
    in the core (no pandas, no torch) so that the command line checks an output before either loads.

    Raises:
        OutputError: ``path`` or an ancestor is a file, or the nearest existing ancestor refuses writes.
    """
    path = Path(path).expanduser()
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{flag} {path}: {probe} is a file, not a directory; give a directory path")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".msabench-write-check-"))
    except OSError as err:
        raise OutputError(
            f"{flag} {path}: cannot write into {probe} ({err.strerror or err}); give a directory you can "
            "write to"
        ) from None


def check_results_roots(roots: Iterable[Path]) -> None:
    """Refuse, in one line, a results root that is a file or does not exist (before pandas loads).

    Raises:
        ConfigError: the first root that is no directory.
    """
    for root in map(Path, roots):
        if root.exists() and not root.is_dir():
            raise ConfigError(
                f"results directory '{root}' is a file: give the --output directory of your runs"
            )
        if not root.is_dir():
            raise ConfigError(
                f"results directory '{root}' does not exist: give the --output of your runs/sweeps"
            )
