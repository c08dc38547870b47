"""Attempts at a run under concurrency, with no engine at all: staging, publication, stale staging."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from msabench import store
from msabench.protocols import Setting
from msabench.runner import RunRequest, execute


def _finished_attempt(run_dir: Path, marker: str) -> store.Attempt:
    attempt = store.Attempt(run_dir).__enter__()
    (attempt.dir / "model.ckpt").write_text(marker)
    store.write_status(attempt.dir, "finished", run_key="k", **attempt.identity())
    return attempt


def test_first_attempt_to_publish_wins_and_a_failed_run_is_moved_aside(tmp_path: Path) -> None:
    run_dir = tmp_path / "synthetic__lf_dnn__complete__s1__k"
    late, early = _finished_attempt(run_dir, "late"), _finished_attempt(run_dir, "early")
    assert early.publish() is True
    early.__exit__(None, None, None)
    assert late.publish() is False  # a finished run is there: it stands
    late.__exit__(None, None, None)
    assert (run_dir / "model.ckpt").read_text() == "early" and store.staging_dirs(tmp_path) == []
    assert store.read_status(run_dir)["attempt"] == early.id

    other = tmp_path / "synthetic__lf_dnn__complete__s2__k"
    with store.Attempt(other) as failed:
        store.write_status(failed.dir, "failed", error="boom")
        assert failed.publish()
    retry = _finished_attempt(other, "retry")
    assert retry.publish() is True  # the failed run is moved aside, not deleted
    retry.__exit__(None, None, None)
    archived = [p for p in tmp_path.iterdir() if ".replaced-" in p.name]
    assert len(archived) == 1 and store.read_status(archived[0])["status"] == "failed"
    statuses = store.run_statuses(tmp_path)
    assert sorted(statuses["status"]) == ["finished", "finished"]


def test_only_the_staging_of_a_dead_attempt_is_removed(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from msabench import store
        attempt = store.Attempt(Path({str(tmp_path / "run")!r})).__enter__()
        print(attempt.dir, flush=True)
        time.sleep(120)
        """
    )
    alive = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        staging = Path(alive.stdout.readline().strip())
        assert staging.is_dir()
        assert store.remove_stale_staging(tmp_path) == [] and staging.is_dir()  # alive: kept
        alive.send_signal(signal.SIGSTOP)  # frozen is still alive
        assert store.remove_stale_staging(tmp_path) == [] and staging.is_dir()
        alive.kill()
        alive.wait()
        assert store.remove_stale_staging(tmp_path) == [staging] and not staging.exists()
    finally:
        alive.kill()
        alive.wait()


def test_shared_root_check_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.check_shared_root(tmp_path) is None
    (tmp_path / ".sweeps" / "shared-check").write_text("driver-token")
    assert store.check_shared_root(tmp_path, "driver-token") is None
    mismatch = store.check_shared_root(tmp_path, "another-token")
    assert mismatch and "not the driver's results root" in mismatch and "\n" not in mismatch
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert "cannot write the results root" in (store.check_shared_root(blocked) or "")
    import fcntl

    def no_flock(*args: Any) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    assert "does not support flock" in (store.check_shared_root(tmp_path) or "")


def _hashes(run_dir: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.name != store.RESULTS_LOCK
    }


OVERRIDES = [
    "trainer.max_epochs=3",
    "trainer.patience=null",
    "data.batch_size=8",
    "data.eval_batch_size=16",
    "data.options.n_scale=0.05",
]


def test_a_frozen_attempt_that_wakes_after_its_retry_published_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    fields = {
        "method": "lf_dnn",
        "train_policy": "complete",
        "seed": 7,
        "overrides": OVERRIDES,
        "extra_blocks": ["smoke"],
    }
    code = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from msabench.protocols import Setting
        from msabench.runner import RunRequest, execute
        fields = json.loads(sys.argv[1])
        output = Path(fields.pop("output"))
        frame = execute(RunRequest(settings=[Setting("intra", rate=0.5)], output=output, **fields))
        print(json.dumps({"cached": frame.attrs["cached"], "run_dir": frame.attrs["run_dir"]}))
        """
    )
    request = {**fields, "settings": [Setting("intra", rate=0.5)], "output": root}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-c", code, json.dumps({**fields, "output": str(root)})]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # freeze it once it is training
            statuses = [store.read_status(d) for d in store.staging_dirs(root)]
            if any(s["status"] == "running" and s["pid"] == first.pid for s in statuses):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the first attempt never started training")
        first.send_signal(signal.SIGSTOP)
        retry = execute(RunRequest(**request))  # the retry, in this process, while the first is frozen
        assert retry.attrs["cached"] is False
        run_dir = Path(retry.attrs["run_dir"])
        published = _hashes(run_dir)
        assert store.read_status(run_dir)["pid"] == os.getpid()
        first.send_signal(signal.SIGCONT)
        out, _ = first.communicate(timeout=180)
    finally:
        first.kill()
    assert first.returncode == 0
    woke = json.loads(out.strip().splitlines()[-1])
    assert woke == {"cached": True, "run_dir": str(run_dir)}  # it counts as reused
    assert _hashes(run_dir) == published  # the retry's results, untouched
    assert store.read_status(run_dir)["pid"] == os.getpid()
    assert store.staging_dirs(root) == []  # the first attempt removed its own staging
    assert len(store.run_statuses(root)) == 1


def test_two_archives_of_a_run_in_the_same_second_are_both_kept(tmp_path: Path, monkeypatch) -> None:
    # Before: the second rename aimed at the first archive's name and failed (OSError: directory not empty).
    class FrozenClock:
        @staticmethod
        def now(tz: object = None) -> datetime:
            return datetime(2026, 12, 8, 2, 42, 8, tzinfo=timezone.utc)

    monkeypatch.setattr("msabench.store.attempts.datetime", FrozenClock)
    run_dir = tmp_path / "runs" / "synthetic__lf_dnn__complete__s1111__0123456789abcdef"
    kept = []
    for marker in ("first", "second", "third"):
        run_dir.mkdir(parents=True)
        (run_dir / "status.json").write_text(marker)
        kept.append(store.archive(run_dir))
    names = [p.name.rsplit(".replaced-", 1)[1] for p in kept if p is not None]
    assert names == ["20261208T024208Z", "20261208T024208Z.2", "20261208T024208Z.3"]
    assert [(p / "status.json").read_text() for p in kept if p is not None] == ["first", "second", "third"]
    assert store.archive(run_dir) is None  # already gone
