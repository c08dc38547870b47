"""The one atomic writer and the one slug helper."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from msabench.core.io import _file_mode, atomic_write, slug


def test_writes_text_bytes_and_a_streamed_object(tmp_path: Path) -> None:
    assert atomic_write(tmp_path / "a" / "b.txt", "héllo") == tmp_path / "a" / "b.txt"
    assert (tmp_path / "a" / "b.txt").read_bytes() == "héllo".encode()
    atomic_write(tmp_path / "c.bin", b"\x00\x01")
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    atomic_write(tmp_path / "d.pkl", lambda handle: pickle.dump({"x": [1, 2]}, handle))
    assert pickle.loads((tmp_path / "d.pkl").read_bytes()) == {"x": [1, 2]}


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    atomic_write(path, "old")

    def broken(handle: object) -> None:
        handle.write(b"half")  # type: ignore[attr-defined]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_the_file_gets_the_mode_of_a_plain_open(tmp_path: Path) -> None:
    # Temporary files are created 0600; the published file must be as readable as any file the user writes.
    umask = os.umask(0o022)
    try:
        _file_mode.cache_clear()
        atomic_write(tmp_path / "x", "x")
    finally:
        os.umask(umask)
        _file_mode.cache_clear()
    assert (tmp_path / "x").stat().st_mode & 0o777 == 0o644


def test_slug() -> None:
    assert slug("synthetic (stored text)") == "synthetic__stored_text_"
    assert slug("mosi/a b@0.3") == "mosi_a_b_0.3"
    assert slug("lf_dnn intra@0.3 s1", keep="-_.@") == "lf_dnn_intra@0.3_s1"
    assert slug(0.5) == "0.5"
