"""Freed memory goes back to the system after every epoch, validation pass and test (issue 37, item 5)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from msabench.config import preflight
from msabench.runner import memory
from msabench.runner.memory import ReleaseFreedMemory, release_freed_memory
from msabench.runner.trainer import build_trainer


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_freed_heap_pages_go_back_to_the_system() -> None:
    def rss_anon_kib() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
        raise AssertionError("no RssAnon")

    # Many small blocks (below the allocator's mmap threshold, so on the heap), every other one kept: the
    # freed half cannot go back by shrinking the heap's top, only by trimming its free pages.
    blocks = [bytearray(64 * 1024) for _ in range(4000)]  # 250 MiB
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])  # touch every page
    del blocks[::2]
    before = rss_anon_kib()
    assert release_freed_memory()
    after = rss_anon_kib()
    assert before - after > 80 * 1024, (before, after)  # most of the 125 MiB freed is returned
    del blocks


def test_every_trainer_releases_freed_memory(tmp_path: Path) -> None:
    cfg = preflight.compose_config("lf_dnn", "synthetic", {}, [])
    assert cfg is not None
    trainer = build_trainer(cfg, tmp_path, callbacks=[], logger=False)
    assert sum(isinstance(c, ReleaseFreedMemory) for c in trainer.callbacks) == 1


def test_without_malloc_trim_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert release_freed_memory() is False
