"""The data variant (aligned/unaligned, normalised or not) and the ``train_zscore`` normalisation."""

import importlib.util
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from msabench.datamodules import build_datamodule, normalize
from msabench.datamodules.normalize import ZSCORE_EPS, train_statistics
from msabench.errors import ConfigError, DataWarning

FAKE = Path(__file__).parents[1] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def loaded(name, path, normalize="none", **options):
    dm = build_datamodule(
        name,
        data_path=path,
        train_policy=None,
        validation=[],
        test=[],
        seed=0,
        normalize=normalize,
        **options,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # fake files are not the published ones
        dm.setup()
    return dm


def raw_valid_frames(path, split, modality):
    """The source's valid frames of one split as (frames, D) float64, -inf zeroed as the loader does."""
    with open(path, "rb") as handle:
        source = pickle.load(handle)[split]
    x = np.asarray(source[modality], dtype=np.float64)
    x[~np.isfinite(x)] = 0
    lengths = np.asarray(source[f"{modality}_lengths"])
    return np.concatenate([x[i, : lengths[i]] for i in range(len(x))])


def test_statistics_are_over_valid_steps_and_independent_of_blocks(monkeypatch):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((37, 9, 4)) * [1, 10, 100, 1e-3] + [0, 5, 1e4, -2]).astype(np.float32)
    valid = rng.random((37, 9)) < 0.6
    x[~valid] = 123.0  # padding content must not count
    frames = x[valid].astype(np.float64)
    whole = train_statistics(x, valid)
    np.testing.assert_allclose(whole[0], frames.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(whole[1], frames.std(axis=0), rtol=1e-9)
    monkeypatch.setattr(normalize, "BLOCK_BYTES", 8 * 9 * 4 * 3)  # blocks of 3 samples
    blocks = train_statistics(x, valid)
    np.testing.assert_allclose(blocks[0], whole[0], rtol=1e-12)
    np.testing.assert_allclose(blocks[1], whole[1], rtol=1e-9)


@pytest.mark.parametrize("mmap", [False, True])
def test_train_zscore_uses_training_statistics_and_keeps_padding_zero(tmp_path, cache, mmap):
    path = fake.make_mmsa(tmp_path / "mosi.pkl")
    plain = loaded("mosi", path, mmap=mmap)
    dm = loaded("mosi", path, normalize="train_zscore", mmap=mmap)
    assert plain.data_variant == "unaligned" and dm.data_variant == "unaligned+zscore"
    for m in ("audio", "vision"):
        frames = raw_valid_frames(path, "train", m)
        mean, std = frames.mean(axis=0), frames.std(axis=0)
        for split in ("train", "valid", "test"):
            columns = dm.data.splits[split]
            valid = np.asarray(columns[f"{m}_valid"])
            x = np.asarray(columns[m])
            assert isinstance(columns[m], np.memmap) == mmap
            expected = (raw_valid_frames(path, split, m) - mean) / (std + ZSCORE_EPS)
            np.testing.assert_allclose(x[valid], expected, rtol=1e-4, atol=1e-4)
            assert not x[~valid].any()  # padding stays 0
        train = np.asarray(dm.data.splits["train"][m])[np.asarray(dm.data.splits["train"][f"{m}_valid"])]
        np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-3)
    # Text is left as stored.
    np.testing.assert_array_equal(dm.data.splits["test"]["text"], plain.data.splits["test"]["text"])
    assert dm.data.splits["test"]["audio"].dtype == np.float32


def test_memory_mapped_normalisation_is_cached_beside_the_arrays(tmp_path, cache):
    path = fake.make_mmsa(tmp_path / "mosi.pkl")
    first = loaded("mosi", path, normalize="train_zscore", mmap=True)
    written = sorted(p.name for p in (cache / "arrays").iterdir())
    key = first.data.cache_key
    assert key in written and f"{key}-zscore-v1" in written and f"{key}-zscore-v1.json" in written
    audio = first.data.splits["train"]["audio"]
    assert Path(audio.filename).parent.name == f"{key}-zscore-v1"
    stamp = Path(audio.filename).stat().st_mtime_ns
    again = loaded("mosi", path, normalize="train_zscore", mmap=True)
    assert Path(again.data.splits["train"]["audio"].filename).stat().st_mtime_ns == stamp  # reused
    np.testing.assert_array_equal(again.data.splits["valid"]["vision"], first.data.splits["valid"]["vision"])


def test_aligned_file_is_recorded_as_aligned(tmp_path, cache):
    aligned = fake.make_mmsa(tmp_path / "aligned.pkl", aligned=True)
    unaligned = fake.make_mmsa(tmp_path / "unaligned.pkl")
    assert loaded("mosi", aligned, variant="aligned").data_variant == "aligned"
    zscored = loaded("mosi", aligned, variant="aligned", normalize="train_zscore")
    assert zscored.data_variant == "aligned+zscore"
    # A file that does not hold the variant asked for: the rows record what it holds, with a warning.
    dm = build_datamodule(
        "mosi", data_path=unaligned, train_policy=None, validation=[], test=[], seed=0, variant="aligned"
    )
    with pytest.warns(DataWarning, match="holds unaligned data but mosi was asked for the aligned variant"):
        dm.setup()
    assert dm.data_variant == "unaligned"


def test_synthetic_is_unaligned(cache):
    dm = build_datamodule(
        "synthetic", train_policy=None, validation=[], test=[], seed=0, n_scale=0.01, normalize="train_zscore"
    )
    dm.setup()
    assert dm.data_variant == "unaligned+zscore"


def test_unknown_normalisation_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="unknown data.normalize 'minmax': use one of none, train_zscore"):
        build_datamodule("synthetic", train_policy=None, validation=[], test=[], seed=0, normalize="minmax")


def test_iemocap_refuses_train_zscore(tmp_path, cache):
    root = fake.make_iemocap(tmp_path / "iemocap")
    dm = build_datamodule(
        "iemocap", data_path=root, train_policy=None, validation=[], test=[], seed=0, normalize="train_zscore"
    )
    with pytest.raises(ConfigError, match="needs dense audio/vision arrays"):
        dm.setup()


def test_synthetic_has_no_aligned_variant():
    with pytest.raises(ConfigError, match="generated unaligned only"):
        build_datamodule("synthetic", train_policy=None, validation=[], test=[], seed=0, variant="aligned")
