"""Stopping on SIGINT and SIGTERM without losing work: one exception that every layer lets through.

A cluster preempts a job with SIGTERM (SLURM, Kubernetes) and a user stops a run with Ctrl-C (SIGINT).
Lightning turns the first into a ``SystemExit`` with status 0 at the end of a batch and the second into
``sys.exit(1)``, and either would leave a run looking like it ended normally. Under :func:`stop_on_signals`
both raise :class:`Interrupted` instead: a ``BaseException``, so no ``except Exception`` records the stop as
a failed run, and the results store keeps the attempt's staging directory with its resume point
(:class:`msabench.store.Attempt`). The command line turns it into one line and the shell's status for
the signal (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Final

STOP_SIGNALS: Final[tuple[signal.Signals, ...]] = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818 - what happened, not an error: the work is kept
    """The process was told to stop by a signal; what it had trained is kept for the next attempt.

    Attributes:
        signum: the signal received.
        kept: what the interrupted work left to resume from, one phrase each (filled on the way out by
            the layers that keep something: a run's staging directory, a sweep's runs in flight).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.kept: list[str] = []

    @property
    def name(self) -> str:
        """The signal's name, such as ``SIGTERM``."""
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """The status a shell gives a process this signal ended: 128 + the signal's number."""
        return 128 + self.signum

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[signal.Signals] = STOP_SIGNALS) -> Iterator[None]:
    """Raise :class:`Interrupted` in this process on ``signals`` (SIGINT, SIGTERM), for the block's duration.

    Lightning's own SIGTERM handler, installed during a fit, calls the handler it found (this one), so the
    stop comes at once rather than at the end of the batch. Outside the main thread (where Python cannot
    install handlers: a Ray task's thread, for one) the block runs with the handlers it has.

    Args:
        signals: the signals that stop the block; a sweep's worker leaves SIGINT to its driver.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_once(signum: int, frame: FrameType | None) -> None:
        # A second Ctrl-C while the first one's clean-up runs (a second or so) must not cut that clean-up
        # short: from here on these signals are ignored.
        for other in signals:
            signal.signal(other, signal.SIG_IGN)
        raise Interrupted(signum)

    saved = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, raise_once)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
