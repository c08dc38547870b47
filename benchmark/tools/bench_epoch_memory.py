"""Resident memory of a run, epoch by epoch: does it grow as the epochs go by?

Run ``python -m msabench.tools.bench_epoch_memory`` for the README's main job (``msabench run --method derl
--protocol intra --rate 0.3``), or give another run's arguments after ``--``::

    python -m msabench.tools.bench_epoch_memory -- --method lf_dnn --protocol intra --rate 0.3 \
        trainer.max_epochs=5

It starts the run as a user would, in a process of its own writing to a pipe (so the run prints one line per
epoch), samples that process's anonymous resident memory (``RssAnon`` in ``/proc/PID/status``: the heap,
not the memory-mapped data) every ``--interval`` seconds, and prints per epoch the memory when the epoch's
line came and the peak since the previous line, then the test's peak, and the growth from the end of epoch 2
to the end of the last epoch (what a long-lived sweep worker would meet, epoch after epoch). The run goes
into a temporary results root, removed at the end, unless ``--output`` names one.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MAIN_JOB = ["--method", "derl", "--protocol", "intra", "--rate", "0.3"]
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)( stage (\S+))?")
KIB_PER_GIB = float(1 << 20)


def rss_anon_kib(pid: int) -> int | None:
    """The process's anonymous resident memory in KiB; None once it has ended."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class Sampler:
    """Samples a process's RssAnon in a thread; :meth:`mark` returns the current value and the peak since."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid, self.interval = pid, interval
        self.current = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while True:
            value = rss_anon_kib(self.pid)
            if value is None:
                return
            with self._lock:
                self.current = value
                self.peak = max(self.peak, value)
            time.sleep(self.interval)

    def mark(self) -> tuple[int, int]:
        """(now, peak since the last mark) in KiB; the peak starts again from now."""
        with self._lock:
            now, peak = self.current, self.peak
            self.peak = self.current
        return now, peak


def main(argv: list[str] | None = None) -> int:
    """Run the job, print the memory per epoch and the growth after epoch 2."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, help="results root of the run (default: temporary, removed)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples (default 0.2)")
    parser.add_argument("run", nargs="*", help="the run's arguments (default: the main job)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="msabench-epoch-memory-") as scratch:
        output = args.output or Path(scratch)
        command = [
            sys.executable,
            "-m",
            "msabench.cli",
            "run",
            *(args.run or MAIN_JOB),
            "--output",
            str(output),
        ]
        print("run: msabench " + " ".join(command[3:]), flush=True)
        print(
            f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start", flush=True
        )
        started = time.time()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        sampler = Sampler(process.pid, args.interval)
        epochs: list[tuple[str, str, float]] = []  # (stage, epoch, RssAnon GiB at its end)
        assert process.stdout is not None
        for line in process.stdout:
            match = EPOCH_LINE.match(line)
            if match:
                now, peak = (kib / KIB_PER_GIB for kib in sampler.mark())
                epochs.append((match.group(4) or "main", f"{match.group(1)}/{match.group(2)}", now))
                print(
                    f"  epoch {epochs[-1][1]:>6} {match.group(4) or '':<9} RssAnon {now:6.2f} GiB   "
                    f"peak in the epoch {peak:6.2f} GiB   {time.time() - started:7.1f} s",
                    flush=True,
                )
            elif line.startswith(("error:", "Traceback", "test ")):
                print("  " + line.rstrip(), flush=True)
        process.wait()
        _, test_peak = sampler.mark()
    print(
        f"test and the rest: peak {test_peak / KIB_PER_GIB:.2f} GiB; exit status {process.returncode}; "
        f"{time.time() - started:.0f} s; load average {os.getloadavg()[0]:.2f} at the end"
    )
    last_stage = [e for e in epochs if epochs and e[0] == epochs[-1][0]]
    if len(last_stage) >= 3:
        (_, second, before), (_, last, after) = last_stage[1], last_stage[-1]
        print(
            f"RssAnon from the end of epoch {second} to the end of epoch {last} ({last_stage[-1][0]}): "
            f"{before:.2f} -> {after:.2f} GiB, {100 * (after - before) / before:+.1f} % (bound: under 10 %)"
        )
    return process.returncode


if __name__ == "__main__":
    raise SystemExit(main())
