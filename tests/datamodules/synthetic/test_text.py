"""The synthetic text encoder: shipped beside the data, loadable as a BERT, contextual, the stored text its
output; the leak of the stored view and its closing by re-encoding, measured with a ridge probe.

Run as a script (``python tests/datamodules/test_synthetic_text.py``) to print the probe's numbers on the full
``synthetic`` set (the ones quoted in ``datamodules/synthetic/__init__.py``).
"""

import hashlib
import pickle
import shutil

import numpy as np
import pytest
import torch

from msabench.core.batch import CLS_TOKEN_ID, SEP_TOKEN_ID, UNK_TOKEN_ID
from msabench.datamodules import build_datamodule, export_synthetic
from msabench.datamodules.synthetic import cached_synthetic, encoder_dir, generate, synthetic_encoder
from msabench.datamodules.synthetic import text as synthetic_text
from msabench.errors import ConfigError, DatasetNotFoundError

TINY = 0.01  # 13 / 2 / 7 samples for `synthetic`


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_synthetic("synthetic", tmp_path_factory.mktemp("export") / "s.pkl", seed=3, n_scale=TINY)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def test_export_ships_a_local_bert_beside_the_pickle(exported):
    from transformers import AutoModel

    directory = encoder_dir(exported)
    assert directory == exported.parent / "s.encoder"
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    assert (directory / "model.safetensors").stat().st_size < 48 * 2**20
    model = AutoModel.from_pretrained(directory, local_files_only=True)
    config = model.config
    assert type(model).__name__ == "BertModel" and config.hidden_size == 768
    assert (config.pad_token_id, config.vocab_size, config.num_hidden_layers) == (0, 4096, 2)
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_stored_text_is_the_encoders_output_on_the_complete_ids(exported):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(encoder_dir(exported), local_files_only=True).eval()
    split = load(exported)["train"]
    ids = torch.from_numpy(split["text_bert"])
    with torch.inference_mode():  # one pass over the padded batch, not the generator's length-sorted chunks
        hidden = model(input_ids=ids[:, 0], attention_mask=ids[:, 1], token_type_ids=ids[:, 2])
    valid = split["text_bert"][:, 1].astype(bool)
    stored = split["text"]
    assert stored.dtype == np.float32 and stored.shape == (13, 50, 768)
    np.testing.assert_allclose(stored[valid], hidden.last_hidden_state.numpy()[valid], rtol=1e-4, atol=1e-4)
    assert (stored[~valid] == 0).all() and (~valid).any()
    assert np.abs(stored[valid]).sum(-1).min() > 1  # nothing valid is accidentally zero


def test_changing_one_token_changes_every_other_tokens_vector():
    model = synthetic_encoder("synthetic", 0)
    ids = generate("synthetic", n_scale=TINY, encoder=model)["train"]["text_bert"][:1].copy()
    length = int(ids[0, 1].sum())
    base = synthetic_text.encode(model, ids)
    for new_id in (2500, synthetic_text.evidence_id(np.array(0), np.array(60))):  # a word, strong evidence
        changed = ids.copy()
        changed[0, 0, 3] = new_id if ids[0, 0, 3] != new_id else 2501
        moved = np.abs(synthetic_text.encode(model, changed) - base).max(-1)[0]
        others = np.delete(np.arange(length), 3)
        assert moved[3] > 1 and (moved[others] > 1e-2).all(), moved[:length]  # [CLS] and [SEP] included
        assert (moved[length:] == 0).all()


def test_re_encoding_with_unk_removes_every_dropped_word():
    model = synthetic_encoder("synthetic", 0)
    ids = generate("synthetic", n_scale=0.05, encoder=model)["train"]["text_bert"]
    lengths = ids[:, 1].sum(1)
    pair = np.flatnonzero(lengths == np.bincount(lengths).argmax())[:2]  # two sentences of the same length
    length = int(lengths[pair[0]])
    stored = synthetic_text.encode(model, ids[pair])
    emptied = ids[pair].copy()
    emptied[:, 0, 1 : length - 1] = UNK_TOKEN_ID
    assert (emptied[:, 0, 0] == CLS_TOKEN_ID).all() and (emptied[:, 0, length - 1] == SEP_TOKEN_ID).all()
    reencoded = synthetic_text.encode(model, emptied)
    assert np.abs(stored[0, [0, length - 1]] - stored[1, [0, length - 1]]).max() > 0.1  # [CLS]/[SEP] differ
    np.testing.assert_allclose(reencoded[0], reencoded[1], atol=1e-5)  # only the length is left


def test_datamodule_names_the_encoder_and_says_the_text_is_contextual(cache):
    dm = build_datamodule("synthetic", train_policy=None, validation=[], test=[], seed=0, n_scale=TINY)
    loaded = dm._load()
    path = cached_synthetic("synthetic", 0, TINY)
    assert loaded.text_contextual and loaded.text_encoder == str(encoder_dir(path))
    iemocap = build_datamodule(
        "synthetic-iemocap", train_policy=None, validation=[], test=[], seed=0, n_scale=TINY
    )._load()
    assert not iemocap.text_contextual and iemocap.text_encoder is None
    assert not encoder_dir(cached_synthetic("synthetic-iemocap", 0, TINY)).exists()
    with pytest.raises(ConfigError, match="no token ids"):
        synthetic_encoder("synthetic-iemocap")


def test_exported_pickle_without_its_encoder_is_a_one_line_error(tmp_path):
    path = export_synthetic("synthetic", tmp_path / "x.pkl", n_scale=TINY)
    shutil.rmtree(encoder_dir(path))
    dm = build_datamodule(
        "synthetic", data_path=path, train_policy=None, validation=[], test=[], seed=0, n_scale=TINY
    )
    with pytest.raises(DatasetNotFoundError, match="x.encoder") as error:
        dm.setup()
    assert "\n" not in str(error.value)


def test_cache_rebuilds_a_lost_encoder_without_touching_the_pickle(cache):
    path = cached_synthetic("synthetic", 0, TINY)
    weights = sha(encoder_dir(path) / "model.safetensors")
    stamp = path.stat().st_mtime_ns
    shutil.rmtree(encoder_dir(path))
    assert cached_synthetic("synthetic", 0, TINY) == path and path.stat().st_mtime_ns == stamp
    assert sha(encoder_dir(path) / "model.safetensors") == weights


# --- The leak probe: ridge regression on text features, Has0 Acc-2 on the test split.


def ridge_has0(train_x, train_y, test_x, test_y, lam=100.0):
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-8
    z = (train_x - mu) / sd
    w = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ (train_y - train_y.mean()))
    pred = ((test_x - mu) / sd) @ w + train_y.mean()
    return float(((pred >= 0) == (test_y >= 0)).mean())


def text_views(model, split, rate, seed=0):
    """Stored and re-encoded text after intra drop at ``rate`` ([CLS]/[SEP] kept), dropped tokens zeroed."""
    ids = split["text_bert"]
    valid = ids[:, 1].astype(bool)
    keep = valid & (np.random.default_rng(seed).random(valid.shape) >= rate)
    keep[:, 0] = True
    keep[np.arange(len(ids)), valid.sum(1) - 1] = True
    unk = ids.copy()
    unk[:, 0] = np.where(valid & ~keep, UNK_TOKEN_ID, ids[:, 0])
    return split["text"] * keep[..., None], synthetic_text.encode(model, unk) * keep[..., None]


def pooled(x, valid):
    return (x.sum(1) / np.sqrt(valid.sum(1, keepdims=True))).astype(np.float64)


def boundary(x, valid):
    return np.concatenate([x[:, 0], x[np.arange(len(x)), valid.sum(1) - 1]], axis=1).astype(np.float64)


def probe(n_scale, rates=(0.0, 0.5, 0.9, 1.0)):
    """Test Has0 Acc-2 of ridge probes on text per intra rate: stored or re-encoded, pooled or boundary."""
    model = synthetic_encoder("synthetic", 0)
    data = generate("synthetic", 0, n_scale, encoder=model)
    train, test = data["train"], data["test"]
    valid = {s: d["text_bert"][:, 1].astype(bool) for s, d in (("train", train), ("test", test))}
    y_train, y_test = train["regression_labels"], test["regression_labels"]
    out = {"chance": float((y_test >= 0).mean())}
    for rate in rates:
        stored_train, reencoded_train = text_views(model, train, rate)
        stored_test, reencoded_test = text_views(model, test, rate, seed=1)
        views = {"stored": (stored_train, stored_test), "reencoded": (reencoded_train, reencoded_test)}
        for view, (x_train, x_test) in views.items():
            for name, feature in (("pooled", pooled), ("boundary", boundary)):
                out[f"{name} {view} r={rate}"] = ridge_has0(
                    feature(x_train, valid["train"]), y_train, feature(x_test, valid["test"]), y_test
                )
    return out


def test_stored_boundaries_leak_the_dropped_words_and_re_encoding_closes_the_leak():
    acc = probe(0.3, rates=(1.0,))  # 385 / 69 / 206 samples; intra r = 1 keeps only [CLS] and [SEP]
    assert acc["boundary stored r=1.0"] > acc["chance"] + 0.08, acc
    assert acc["pooled stored r=1.0"] > acc["chance"] + 0.08, acc
    assert acc["boundary reencoded r=1.0"] < acc["chance"] + 0.05, acc


def multimodal_probe(n_scale, rates=(0.0, 0.2, 0.4, 0.6, 0.8, 0.9)):
    """Ridge probes on lf_dnn-style pooled features of the loaded data (text summed / sqrt(length), audio and
    vision averaged over the padded length), trained and tested at the same intra rate."""
    dm = build_datamodule("synthetic", train_policy=None, validation=[], test=[], seed=0, n_scale=n_scale)
    dm.setup()
    model = synthetic_encoder("synthetic", 0)
    splits = {s: dm.dataset(s).columns for s in ("train", "test")}
    out = {}
    for rate in rates:
        feats = {}
        for s, columns in splits.items():
            rng = np.random.default_rng([int(100 * rate), s == "test"])
            split = {"text": columns["text"], "text_bert": columns["text_ids"]}
            feats[s] = dict(
                zip(
                    ("text stored", "text reencoded"),
                    text_views(model, split, rate, seed=int(s == "test")),
                    strict=True,
                )
            )
            feats[s] = {k: pooled(v, columns["text_valid"]) for k, v in feats[s].items()}
            for m in ("audio", "vision"):
                keep = columns[f"{m}_valid"] & (rng.random(columns[f"{m}_valid"].shape) >= rate)
                feats[s][m] = (columns[m] * keep[..., None]).mean(1).astype(np.float64)
        sets = {"all (text re-encoded)": ("text reencoded", "audio", "vision")}
        sets["all (text stored)"] = ("text stored", "audio", "vision")
        if rate == 0:
            sets |= {"text": ("text stored",), "audio": ("audio",), "vision": ("vision",)}
        for name, keys in sets.items():
            x = {s: np.concatenate([feats[s][k] for k in keys], axis=1) for s in splits}
            out[f"{name} r={rate}"] = ridge_has0(
                x["train"], splits["train"]["label"], x["test"], splits["test"]["label"]
            )
    return out


if __name__ == "__main__":
    for key, value in {**probe(1.0), **multimodal_probe(1.0)}.items():
        print(f"{key:<36} {value:.3f}")
