"""The comparison with MMSA's loop: the install hint, and msabench's half on a tiny exported pickle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from msabench.datamodules.synthetic import generate, synthetic_encoder, write_pickle
from msabench.tools import bench_mmsa


@pytest.fixture(scope="module")
def tiny_pickle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate("synthetic", seed=0, n_scale=0.05, encoder=synthetic_encoder("synthetic"))
    return write_pickle(data, tmp_path_factory.mktemp("mmsa") / "tiny.pkl")


def test_missing_mmsa_is_one_line_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    hidden = lambda name, *args: None if name == "MMSA" else real(name, *args)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", hidden)
    assert bench_mmsa.main(["--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and bench_mmsa.INSTALL in err and "MMSA" in err


def test_the_mmsa_process_is_prepared_once_per_seed_without_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each seed prepares the process again; the stand-in left by the first (no __spec__) must not break it.
    import sys

    import torch

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pynvml" else real(n, *a))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)
    monkeypatch.setattr(torch.cuda, "set_device", torch.cuda.set_device)  # restored after the test
    bench_mmsa._prepare_mmsa_process()
    monkeypatch.setattr(importlib.util, "find_spec", real)  # the real one raises on a module without a spec
    bench_mmsa._prepare_mmsa_process()
    assert sys.modules["pynvml"].__spec__ is None


def test_msabench_side_trains_on_the_exported_pickle(tiny_pickle: Path, tmp_path: Path) -> None:
    result = bench_mmsa.train_msabench(
        tiny_pickle, 1111, tmp_path, overrides=["trainer.max_epochs=2", "trainer.patience=null"]
    )
    assert (result.loop, result.seed, result.epochs) == ("msabench", 1111, 2)
    assert 1 <= result.best_epoch <= 2 and result.seconds_per_epoch > 0
    assert set(bench_mmsa.METRICS.values()) <= set(result.metrics)  # every MMSA metric has its column


@pytest.mark.slow
def test_both_loops_on_one_seed(tiny_pickle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("MMSA")
    assert bench_mmsa.main(["--data-path", str(tiny_pickle), "--seeds", "1111"]) == 0
    out = capsys.readouterr().out
    assert "msabench / MMSA seconds per epoch: median" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("1111 ")]
    assert {row[1] for row in rows} == {"MMSA", "msabench"}
