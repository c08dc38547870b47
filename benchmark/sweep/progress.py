"""Progress of a sweep: runs done / running / failed / left, elapsed, ETA, and where the runs went.

On a terminal the status line is a ``tqdm`` bar redrawn in place, with each event printed above it; elsewhere
(a log file, CI) each event is one line followed by the status.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from msabench.core.messages import duration


@dataclass
class Progress:
    """Runs done / running / failed / left, elapsed and estimated time; a live line on a terminal.

    The estimate learns one wall time per (dataset, method, policy) from the runs this sweep trained and the
    recorded times of those it reused, because one method's run can cost ten times another's.
    """

    groups: Sequence[str]
    """Per job index: the group whose wall times predict that job's (``Job.timing_group``)."""
    workers: int
    stream: TextIO | None = None
    started: float = field(default_factory=time.time)
    trained: int = 0
    reused: int = 0
    failed: int = 0
    running_since: dict[int, float] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    walls: dict[str, list[float]] = field(default_factory=dict)
    hosts: Counter = field(default_factory=Counter)
    """Runs finished or reused per host (or engine node): shown when there is more than one."""
    _bar: Any = None

    @property
    def live(self) -> bool:
        """Whether the status line is redrawn in place."""
        return bool(self.stream is not None and getattr(self.stream, "isatty", lambda: False)())

    @property
    def total(self) -> int:
        """Jobs in the sweep."""
        return len(self.groups)

    @property
    def running(self) -> int:
        """Jobs in flight."""
        return len(self.running_since)

    @property
    def left(self) -> int:
        """Jobs neither done nor running."""
        return self.total - len(self.done) - self.running

    def start(self, index: int) -> None:
        """Job ``index`` went to a worker."""
        self.running_since[index] = time.time()

    def requeue(self, index: int) -> None:
        """Job ``index`` goes back to the queue (its worker died)."""
        self.running_since.pop(index, None)

    def finish(self, index: int, status: str, wall_s: float | None, host: str | None = None) -> None:
        """Job ``index`` ended; ``wall_s`` is its training time (recorded time for a reused run), if any."""
        self.running_since.pop(index, None)
        if host and status != "failed":
            self.hosts[host] += 1
        self.done.add(index)
        match status:
            case "finished":
                self.trained += 1
            case "reused":
                self.reused += 1
            case _:
                self.failed += 1
        if wall_s is not None and status != "failed":
            self.walls.setdefault(self.groups[index], []).append(float(wall_s))

    def eta_s(self) -> float | None:
        """Estimated seconds to the end: each open job's expected wall time, shared among the workers.

        A job's expectation is the mean wall time of its group, else of every timed run; a running job
        counts what it has left of that (never below zero).
        """
        every = [w for walls in self.walls.values() for w in walls]
        if not every:
            return None
        overall = sum(every) / len(every)

        def expected(index: int) -> float:
            walls = self.walls.get(self.groups[index])
            return sum(walls) / len(walls) if walls else overall

        now = time.time()
        queued = (i for i in range(self.total) if i not in self.done and i not in self.running_since)
        work = sum(expected(i) for i in queued)
        work += sum(max(expected(i) - (now - t0), 0.0) for i, t0 in self.running_since.items())
        return work / max(self.workers, 1)

    def line(self) -> str:
        """The status line."""
        eta = self.eta_s()
        done = self.trained + self.reused
        nodes = ""
        if len(self.hosts) > 1:
            top = self.hosts.most_common(4)
            more = f", +{len(self.hosts) - len(top)}" if len(self.hosts) > len(top) else ""
            nodes = " · per node: " + ", ".join(f"{h.rsplit(':', 1)[-1][:12]} {n}" for h, n in top) + more
        return (
            f"[{duration(time.time() - self.started)}] {done}/{self.total} done ({self.reused} reused) · "
            f"{self.running} running · {self.failed} failed · {self.left} left · "
            f"ETA {duration(eta) if eta is not None else '?'}{nodes}"
        )

    def _live_bar(self) -> Any:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total, file=self.stream, bar_format="{bar:16} {desc}", dynamic_ncols=True
            )
        return self._bar

    def event(self, text: str) -> None:
        """Print one event line (and redraw the status line on a terminal)."""
        if self.stream is None:
            return
        if self.live:
            self._live_bar().write(text, file=self.stream)
            self._draw()
        else:
            self.stream.write(f"{text} | {self.line()}\n")
        self.stream.flush()

    def tick(self) -> None:
        """Redraw the status line (terminal only)."""
        if self.live and self.stream is not None:
            self._draw()

    def _draw(self) -> None:
        bar = self._live_bar()
        bar.n = len(self.done)
        bar.set_description_str(self.line())  # refreshes

    def close(self) -> None:
        """End the live line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
