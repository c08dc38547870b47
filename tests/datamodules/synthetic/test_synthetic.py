import hashlib
import pickle

import numpy as np
import pytest

from msabench.core.batch import UNK_TOKEN_ID
from msabench.datamodules import build_datamodule, export_synthetic
from msabench.datamodules.synthetic import (
    CLS_ID,
    RECIPES,
    SEP_ID,
    encoder_dir,
    generate,
    synthetic_encoder,
)
from msabench.datamodules.synthetic import text as synthetic_text
from msabench.errors import ConfigError, UnknownNameError

TINY = 0.01  # 13 / 2 / 7 samples for `synthetic`


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(name="synthetic", **options):
    dm = build_datamodule(name, train_policy=None, validation=[], test=[], seed=0, n_scale=TINY, **options)
    dm.setup()
    return dm


def test_deterministic_pickles_and_encoders(tmp_path):
    first = export_synthetic("synthetic", tmp_path / "a.pkl", seed=3, n_scale=TINY)
    second = export_synthetic("synthetic", tmp_path / "b.pkl", seed=3, n_scale=TINY)
    other = export_synthetic("synthetic", tmp_path / "c.pkl", seed=4, n_scale=TINY)
    assert sha(first) == sha(second) != sha(other)
    weights = [sha(encoder_dir(path) / "model.safetensors") for path in (first, second, other)]
    assert weights[0] == weights[1] != weights[2]


def test_export_round_trip(tmp_path):
    path = export_synthetic("Synthetic-SIMS", tmp_path, seed=1, n_scale=TINY)
    assert path == tmp_path / "synthetic-sims_seed1.pkl"
    dm = build("synthetic-sims", data_path=path)
    assert dm.sha256 == sha(path)
    generated = generate("synthetic-sims", seed=1, n_scale=TINY)
    columns = dm.dataset("valid").columns
    np.testing.assert_array_equal(columns["vision"], generated["valid"]["vision"])
    np.testing.assert_array_equal(columns["label_text"], generated["valid"]["regression_labels_T"])
    np.testing.assert_array_equal(columns["text_ids"], generated["valid"]["text_bert"])


def test_cached_pickle_is_reused_and_hashed(cache):
    dm = build()
    files = list((cache / "synthetic").glob("*.pkl"))
    assert len(files) == 1 and dm.sha256 == sha(files[0])
    stamp = files[0].stat().st_mtime_ns
    assert build().sha256 == dm.sha256 and files[0].stat().st_mtime_ns == stamp
    assert build(data_seed=1).sha256 != dm.sha256


def test_mosi_like_shapes_and_quirks():
    dm = build()
    dims = dm.dims
    assert (
        dims.text_len,
        dims.text_dim,
        dims.audio_len,
        dims.audio_dim,
        dims.vision_len,
        dims.vision_dim,
    ) == (
        50,
        768,
        375,
        5,
        500,
        20,
    )
    assert dims.has_text_ids and dims.metric_family == "mosi" and dims.task == "regression"
    assert dm.split_sizes == {"train": 13, "valid": 2, "test": 7}
    raw = generate("synthetic", n_scale=TINY)["train"]
    assert np.isneginf(raw["audio"]).any()  # as COVAREP; the loader zeroes them
    assert np.isfinite(dm.dataset("train").columns["audio"]).all()


def test_split_sizes_and_labels():
    assert RECIPES["synthetic"].sizes == (1284, 229, 686)  # MOSI's
    data = generate("synthetic", n_scale=0.3)
    assert [len(data[s]["regression_labels"]) for s in ("train", "valid", "test")] == [385, 69, 206]
    labels = np.concatenate([data[s]["regression_labels"] for s in ("train", "valid", "test")])
    assert labels.min() >= -3 and labels.max() <= 3
    np.testing.assert_allclose(labels * 5, np.rint(labels * 5), atol=1e-5)  # means of five ratings
    assert 0.02 < (labels == 0).mean() < 0.15  # Has0 and Non0 differ


def test_text_ids_and_padding():
    data = generate("synthetic", n_scale=TINY)["train"]
    ids, lengths = data["text_bert"], data["text_bert"][:, 1].sum(1)
    rows = np.arange(len(ids))
    assert (
        ids.dtype == np.int64
        and (ids[:, 0, 0] == CLS_ID).all()
        and (ids[rows, 0, lengths - 1] == SEP_ID).all()
    )
    padding = np.arange(ids.shape[2]) >= lengths[:, None]
    assert (ids[:, 0][padding] == 0).all() and (ids[:, 2] == 0).all()
    assert (data["text"][padding] == 0).all()
    audio_padding = np.arange(375) >= data["audio_lengths"][:, None]
    assert (data["audio"][audio_padding] == 0).all() and audio_padding.any() and (~audio_padding).any()
    assert len(np.unique(data["audio_lengths"])) > 3  # variable valid lengths


def test_sims_labels():
    data = generate("synthetic-sims", n_scale=0.2)
    assert data["train"]["vision"].shape[1:] == (55, 709) and data["train"]["audio"].shape[1:] == (400, 33)
    for key in ("regression_labels", "regression_labels_T", "regression_labels_A", "regression_labels_V"):
        labels = np.concatenate([data[s][key] for s in ("train", "valid", "test")])
        assert labels.min() >= -1 and labels.max() <= 1
        np.testing.assert_allclose(labels * 5, np.rint(labels * 5), atol=1e-5)
    dm = build("synthetic-sims")
    assert dm.dims.metric_family == "sims" and "label_vision" in dm.dataset("train").columns


def test_iemocap_like():
    dm = build_datamodule(
        "synthetic-iemocap", train_policy=None, validation=[], test=[], seed=0, n_scale=0.05
    )
    dm.setup()
    dims = dm.dims
    assert (dims.text_dim, dims.audio_dim, dims.vision_dim) == (1024, 130, 342)
    assert dims.task == "classification" and dims.num_classes == 4 and dims.metric_family == "iemocap"
    assert not dims.has_text_ids and not dm.keep_text_boundaries
    columns = dm.dataset("train").columns
    assert columns["label"].dtype == np.int64 and set(np.unique(columns["label"])) <= {0, 1, 2, 3}
    assert not columns["text_valid"].all()  # text lengths come from `text_lengths`
    labels = generate("synthetic-iemocap", n_scale=0.3)["train"]["classification_labels"]
    assert (np.bincount(labels, minlength=4) / len(labels)).min() > 0.1


def ridge_has0(train_x, train_y, test_x, test_y, lam=100.0):
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-8
    z = (train_x - mu) / sd
    w = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (train_y - train_y.mean()))
    pred = ((test_x - mu) / sd) @ w + train_y.mean()
    return ((pred >= 0) == (test_y >= 0)).mean()


def pooled(columns, rate, rng, encoder):
    feats = []
    for m in ("text", "audio", "vision"):
        valid = columns[f"{m}_valid"]
        keep = valid & (rng.random(valid.shape) >= rate)
        x = columns[m]
        if m == "text" and rate > 0:
            # Contextual text: a dropped word leaves the stored view only when the sentence is re-encoded with
            # [UNK] in its place ([CLS] and [SEP] are kept, as the intra protocol keeps them).
            keep[:, 0] = True
            keep[np.arange(len(keep)), valid.sum(1) - 1] = True
            ids = columns["text_ids"].copy()
            ids[:, 0] = np.where(valid & ~keep, UNK_TOKEN_ID, ids[:, 0])
            x = synthetic_text.encode(encoder, ids)
        x = x * keep[..., None]
        feats.append(x.sum(1) / np.sqrt(valid.sum(1, keepdims=True)) if m == "text" else x.mean(1))
    return np.concatenate(feats, axis=1).astype(np.float64)


def test_evidence_is_learnable_and_degrades_with_missing_steps():
    # A linear probe on pooled features (trained and tested at the same drop rate, text re-encoded) is well
    # above chance on complete data and loses accuracy as steps go missing: the module docstring's
    # calibration, at half size.
    dm = build_datamodule("synthetic", train_policy=None, validation=[], test=[], seed=0, n_scale=0.5)
    dm.setup()
    train, test = dm.dataset("train").columns, dm.dataset("test").columns
    encoder = synthetic_encoder("synthetic", 0)
    rng = np.random.default_rng(0)
    accuracy = {
        rate: ridge_has0(
            pooled(train, rate, rng, encoder), train["label"], pooled(test, rate, rng, encoder), test["label"]
        )
        for rate in (0.0, 0.9)
    }
    assert accuracy[0.0] > 0.72, accuracy
    assert accuracy[0.0] - accuracy[0.9] > 0.07, accuracy


def test_errors(tmp_path):
    with pytest.raises(UnknownNameError, match="synthetic-mosi"):
        export_synthetic("synthetic-mosi", tmp_path)
    with pytest.raises(ConfigError, match="n_scale"):
        build_datamodule("synthetic", train_policy=None, validation=[], test=[], seed=0, n_scale=0)
    with pytest.raises(FileNotFoundError, match="export_synthetic"):
        build(data_path=tmp_path / "missing.pkl")


def test_pickle_is_plain_data(tmp_path):
    path = export_synthetic("synthetic-iemocap", tmp_path / "x.pkl", n_scale=0.01)
    with open(path, "rb") as handle:
        data = pickle.load(handle)
    assert set(data) == {"train", "valid", "test", "config"}
    assert data["config"]["name"] == "synthetic-iemocap" and data["train"]["id"].dtype == object
