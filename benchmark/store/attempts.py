"""Attempts at a run: each trains in a staging directory of its own and publishes it whole, overwriting none.

Every attempt at a run trains in its own staging directory, ``<root>/.staging/<run>.<attempt>/``, and
publishes it with one ``rename`` onto the run directory. On a cluster two attempts at one run can be alive at
once (a retry starts while a lost node's worker lives on for seconds, a frozen one for longer): the rename is
atomic, and onto a non-empty directory it fails, so the first attempt to publish a finished run wins and a
later one only reads it. A published ``failed`` run (or an interrupted run of the in-place layout) is moved
aside as ``*.replaced-*`` by the next attempt that publishes, never deleted. An attempt holds an exclusive
``flock`` on its staging directory for its whole life, so a staging directory whose lock can be taken belongs
to a dead attempt; this is why the results root must support ``flock`` (:func:`check_shared_root`). A
dead attempt's staging directory that holds a resume point (``resume.json``, written by the runner at the end
of every epoch) is progress: the next attempt at the same run, on the same code, adopts it and trains on from
there (:meth:`Attempt.__enter__`). Any other dead attempt's directory, and a resumable one whose run has since
been published finished, is removed (:func:`remove_stale_staging`).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Final

from msabench.core.io import atomic_write
from msabench.core.signals import Interrupted
from msabench.store.records import (
    read_status,
)

STAGING_DIR: Final[str] = ".staging"
ATTEMPT_LOCK: Final[str] = ".attempt.lock"
RESUME_FILE: Final[str] = "resume.json"
RESULTS_LOCK: Final[str] = ".results.lock"
# A staging directory without its lock file is either being published right now (the lock file is removed
# just before the rename) or was left by a crash in that instant: only the second kind gets this old.
LOCKLESS_GRACE_S: Final[float] = 3600.0


def _flock(handle: IO[Any], blocking: bool) -> bool:
    """Take an exclusive ``flock`` on ``handle``; False when another process holds it (non-blocking)."""
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's results lock (for adding settings to a published run)."""
    with open(Path(run_dir) / RESULTS_LOCK, "a") as handle:
        _flock(handle, blocking=True)
        yield


@dataclass
class Attempt:
    """One attempt at a run: its own staging directory, locked for the attempt's whole life.

    Use as a context manager; on exit the staging directory is gone (published, or removed), unless the
    attempt was stopped from outside (a signal) after its first epoch: then it stays with its resume point,
    as after a SIGKILL, for the next attempt to adopt. Given a
    ``resume_code``, entering first looks for a dead attempt's staging directory of the same run whose resume
    point was written by that code, and adopts it in place (same path, so every path saved in its checkpoints
    stays valid); :attr:`resumed_from` then holds that resume point.

    Attributes:
        run_dir: the run directory the attempt publishes to.
        id: unique over hosts and time (host, process id, random suffix).
        resume_code: the code identity a resume point must carry to be adopted; None never adopts.
        resumed_from: the adopted resume point (``resume.json``), None for a fresh start.
    """

    run_dir: Path
    id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}")
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    resume_code: str | None = None
    resumed_from: dict[str, Any] | None = None
    _lock: IO[Any] | None = None
    _adopted: Path | None = None

    @property
    def dir(self) -> Path:
        """The staging directory: on the results root's filesystem, so that publishing is one rename."""
        if self._adopted is not None:
            return self._adopted
        return self.run_dir.parent / STAGING_DIR / f"{self.run_dir.name}.{self.id}"

    def identity(self) -> dict[str, Any]:
        """What ``status.json`` records about the attempt."""
        return {"attempt": self.id, "host": self.host, "pid": self.pid}

    def __enter__(self) -> Attempt:
        if self.resume_code is not None and self._adopt():
            return self
        for _ in range(8):  # another attempt may remove the empty staging root between its creation and ours
            try:
                self.dir.mkdir(parents=True)
                break
            except FileNotFoundError:
                continue
        self._lock = open(self.dir / ATTEMPT_LOCK, "a")  # noqa: SIM115 - held until __exit__
        _flock(self._lock, blocking=True)
        return self

    def _adopt(self) -> bool:
        """Take over a dead attempt's resumable staging directory of this run, if there is one."""
        candidates = [
            folder
            for folder in staging_dirs(self.run_dir.parent)
            if folder.name.startswith(f"{self.run_dir.name}.")
        ]
        for folder in candidates:
            record = read_resume(folder) or {}
            if (record.get("run"), record.get("code")) != (self.run_dir.name, self.resume_code):
                continue
            try:
                handle = open(folder / ATTEMPT_LOCK, "r+")  # noqa: SIM115 - held until __exit__
            except FileNotFoundError:  # being published, or removed: not ours to take
                continue
            # The lock is free only when its attempt died; once taken, no other attempt can adopt it. It was
            # removed meanwhile only if its run was published finished (remove_stale_staging): then let it go.
            if not _flock(handle, blocking=False) or read_resume(folder) is None:
                handle.close()
                continue
            self._lock, self._adopted, self.resumed_from = handle, folder, record
            return True
        return False

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        point = read_resume(self.dir) if self.dir.exists() else None
        if point is not None and _stopped(error):
            # Stopped from outside (a signal, Ctrl-C, a preemption): the last epoch's resume point is the
            # next attempt's start, as after a SIGKILL. Releasing the lock below makes it adoptable.
            if isinstance(error, Interrupted):
                error.kept.append(
                    f"{self.run_dir.name}: stage {point.get('stage')}, {point.get('epochs')} epoch(s) trained"
                )
        elif self.dir.exists():  # not published: nothing in it is worth keeping
            shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        with contextlib.suppress(OSError):  # the staging root goes when it is empty, so a run leaves no trace
            self.dir.parent.rmdir()

    def publish(self) -> bool:
        """Rename the staging directory onto the run directory; False when a finished run is there already.

        A run directory that holds no finished run (a failed one, an interrupted one of the in-place layout)
        is moved aside as ``<run>.replaced-<time>-<attempt>`` first: moved, never deleted.
        """
        (self.dir / ATTEMPT_LOCK).unlink(missing_ok=True)  # our descriptor keeps the lock until __exit__
        (self.dir / RESUME_FILE).unlink(missing_ok=True)  # a published run is no longer anyone's to resume
        for _ in range(8):
            try:
                os.rename(self.dir, self.run_dir)
                return True
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            if read_status(self.run_dir)["status"] == "finished":
                return False
            archive(self.run_dir, self.id)
        raise OSError(f"could not publish {self.dir} onto {self.run_dir}: it keeps being replaced")


def _stopped(error: BaseException | None) -> bool:
    """Whether an attempt ended because its process was told to stop, not because its run failed.

    :class:`~msabench.core.signals.Interrupted`, and what Lightning makes of a signal when no handler of ours
    is installed (``KeyboardInterrupt`` turned into ``sys.exit(1)``, SIGTERM into a ``SystemExit``): every
    ``BaseException`` that is not an ``Exception``.
    """
    return error is not None and not isinstance(error, Exception)


def archive(run_dir: Path, suffix: str = "") -> Path | None:
    """Move a run directory aside as ``<run>.replaced-<UTC time>[-suffix]``; None if it is already gone.

    A second archive of the same run within the same second gets ``.2``, ``.3``, ... after its name: no
    archive is ever renamed onto another (a non-empty target refuses the rename).
    """
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{run_dir.name}.replaced-{stamp}" + (f"-{suffix}" if suffix else "")
    for n in itertools.count(1):
        target = run_dir.with_name(name if n == 1 else f"{name}.{n}")
        try:
            os.rename(run_dir, target)
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
                continue
            raise
        return target
    raise AssertionError("unreachable")  # itertools.count never ends


def staging_dirs(root: Path) -> list[Path]:
    """The staging directories under a results root (live and dead attempts alike)."""
    folder = Path(root) / STAGING_DIR
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def write_resume(staging: Path, **fields: Any) -> None:
    """Record an attempt's resume point in its staging directory (atomically)."""
    atomic_write(Path(staging) / RESUME_FILE, json.dumps(fields, indent=2, default=str))


def read_resume(staging: Path) -> dict[str, Any] | None:
    """A staging directory's resume point, or None when it has none (or it is torn)."""
    try:
        record = json.loads((Path(staging) / RESUME_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _worth_keeping(folder: Path, root: Path) -> bool:
    """Whether a dead attempt's staging directory is progress a later attempt can resume."""
    record = read_resume(folder)
    if record is None or not isinstance(record.get("run"), str):
        return False
    return read_status(Path(root) / record["run"])["status"] != "finished"


def remove_stale_staging(root: Path) -> list[Path]:
    """Remove the staging directories of dead attempts (their lock can be taken); returns what went.

    An attempt's lock dies with its process, SIGKILL included, and on a network filesystem with the node's
    lease; a live attempt, even a frozen one, keeps it, so its directory stays. A dead attempt's directory
    that holds a resume point stays too, for the next attempt at its run, until that run is published
    finished.
    """
    removed = []
    for folder in staging_dirs(root):
        try:
            fd = os.open(folder / ATTEMPT_LOCK, os.O_RDONLY)
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - folder.stat().st_mtime > LOCKLESS_GRACE_S:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            continue
        with os.fdopen(fd) as handle:
            if _flock(handle, blocking=False) and not _worth_keeping(folder, root):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    with contextlib.suppress(OSError):  # only when empty; an attempt creating its folder recreates it
        (Path(root) / STAGING_DIR).rmdir()
    return removed


def check_shared_root(root: Path, token: str | None = None) -> str | None:
    """Check from this process that ``root`` is usable as a results store; None when it is, else why not.

    Args:
        root: the results root.
        token: when given, the content of ``<root>/.sweeps/shared-check`` written by the sweep's driver: a
            node that reads something else (or nothing) sees another filesystem under the same path.
    """
    root = Path(root)
    host = socket.gethostname()
    probe = root / ".sweeps" / f".probe-{host}-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        with open(probe, "w") as handle:
            handle.write(host)
            try:
                import fcntl

                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
            except (ImportError, OSError) as err:
                return (
                    f"{host}: the results root {root} does not support flock ({err}); mount it with flock "
                    "support (e.g. Lustre -o flock) or give another --output"
                )
    except OSError as err:
        return f"{host}: cannot write the results root {root} ({err.strerror or err}); give a shared --output"
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    if token is not None:
        try:
            seen = (root / ".sweeps" / "shared-check").read_text()
        except OSError:
            seen = None
        if seen != token:
            return (
                f"{host}: {root} is not the driver's results root (another filesystem under the same path); "
                "give an --output on a filesystem every node shares"
            )
    return None
