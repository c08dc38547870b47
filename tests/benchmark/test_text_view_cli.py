"""The text view from the command line: token drops on contextual text need an encoder, or the stored view."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from msabench import leaderboard as lb
from msabench.cli import main
from msabench.leaderboard.aggregate import separate_data_identities

FAKE = Path(__file__).parents[1] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)

FAST = ["trainer.fast_dev_run=true", "data.batch_size=4", "data.eval_batch_size=4"]


@pytest.fixture
def mosi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    return fake.make_mmsa(tmp_path / "mosi.pkl")


def _run(mosi: Path, out: Path, *args: str) -> int:
    base = ["run", "--method", "lf_dnn", "--dataset", "mosi", "--data-path", str(mosi), "--output", str(out)]
    return main([*base, *args, *FAST])


def _view(out: Path) -> set[str]:
    frames = [pd.read_csv(p) for p in out.glob("*/results.csv")]
    return set(pd.concat(frames)["text_view"])


def test_intra_without_an_encoder_is_one_line(mosi, tmp_path, capsys):
    out = tmp_path / "runs"
    assert _run(mosi, out, "--protocol", "intra", "--rate", "1.0") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--bert-path DIR" in err and "--text-view stored" in err
    assert not out.exists() or not any(out.iterdir())


def test_intra_with_an_encoder_is_reencoded(mosi, tmp_path, tiny_bert):
    out = tmp_path / "runs"
    assert _run(mosi, out, "--protocol", "intra", "--rate", "1.0", "--bert-path", str(tiny_bert)) == 0
    assert _view(out) == {"reencoded"}


def test_whole_modality_removal_needs_no_encoder(mosi, tmp_path):
    out = tmp_path / "runs"
    assert _run(mosi, out, "--protocol", "inter", "--condition", "ta") == 0
    assert _view(out) == {"intact"}  # no token dropped: nothing leaks


def test_a_run_that_drops_no_token_pools_with_the_reencoded_run(mosi, tmp_path, tiny_bert, capsys):
    out = tmp_path / "runs"
    assert _run(mosi, out, "--protocol", "inter", "--rate", "0.3") == 0
    assert _run(mosi, out, "--protocol", "inter", "--rate", "0.3", "--bert-path", str(tiny_bert)) == 0
    assert _view(out) == {"intact", "reencoded"}
    tidy = lb.load(out)
    # One dataset, not "mosi (stored text)" apart with a leak warning (the configs differ by --bert-path, so
    # they are two entries of it).
    assert set(separate_data_identities(tidy.copy())["dataset"]) == {"mosi"}
    board = lb.build(tidy, None)
    assert set(board.points["dataset"]) == {"mosi"} and board.points["config_id"].nunique() == 2
    md = lb.to_markdown(board)
    assert "(stored text)" not in md and "text drops leak" not in md and "intact: the stored" in md


def test_reencoded_without_an_encoder_says_what_is_missing(mosi, tmp_path, capsys):
    out = tmp_path / "runs"
    assert _run(mosi, out, "--protocol", "inter", "--rate", "0.3", "--text-view", "reencoded") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--text-view reencoded needs the encoder" in err
    assert "drops no token" in err and "dropping tokens" not in err


def test_the_stored_view_by_name_is_a_separate_run(mosi, tmp_path, tiny_bert):
    out = tmp_path / "runs"
    assert _run(mosi, out, "--protocol", "intra", "--rate", "0.5", "--text-view", "stored") == 0
    assert _run(mosi, out, "--protocol", "intra", "--rate", "0.5", "--bert-path", str(tiny_bert)) == 0
    assert _view(out) == {"stored", "reencoded"}
    assert len(list(out.glob("*/results.csv"))) == 2  # different views are different runs
