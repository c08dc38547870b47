"""Progress messages of the long silent steps (generating data, re-encoding text views) on the console.

Library code says what it is doing through the ``msabench`` logger at INFO, which prints nothing unless a
handler is set: the command line and a sweep's workers set one with :func:`show_messages`, a script using
the Python API may set its own.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

LOGGER: Final[str] = "msabench"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a sweep's worker log, a test's capture)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # logging.StreamHandler sets it; the property decides
        pass


def show_messages() -> None:
    """Print the ``msabench`` logger's messages as plain lines on stderr (once per process)."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def duration(seconds: float) -> str:
    """``1m05s`` below an hour, ``1h02m05s`` above: how the run's and the sweep's lines tell time."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
