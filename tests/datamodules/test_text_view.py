"""The text view: contextual text is re-encoded where tokens are dropped, refused without an encoder."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from msabench.core.batch import UNK_TOKEN_ID
from msabench.datamodules import build_datamodule
from msabench.datamodules.text_view import TextReencoder, resolve_text_view
from msabench.errors import ConfigError, UnknownNameError
from msabench.protocols import Setting, build_policy

FAKE = Path(__file__).parents[1] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)

INTRA = Setting("intra", rate=0.5)
INTER = Setting("inter", rate=0.3)


def _dm(path, *, test, policy="complete", **text):
    module = build_datamodule(
        "mosi",
        data_path=path,
        train_policy=build_policy(policy, matched=test[0]),
        validation=[test[0]],
        test=test,
        seed=1,
        batch_size=4,
        **text,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.setup("fit")
    module.caught = [str(w.message) for w in caught]
    return module


@pytest.fixture
def pickle_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    return fake.make_mmsa(tmp_path / "mosi.pkl")


def test_resolution_rules():
    common = {"dataset": "mosi", "contextual": True, "has_ids": True}
    assert resolve_text_view("auto", **common, encoder_path="d", drops_tokens=True) == "reencoded"
    # No token dropped: the stored features are exact, whatever was asked (the label says what happened).
    assert resolve_text_view("auto", **common, encoder_path=None, drops_tokens=False) == "intact"
    assert resolve_text_view("stored", **common, encoder_path=None, drops_tokens=False) == "intact"
    assert resolve_text_view("stored", **common, encoder_path="d", drops_tokens=False) == "intact"
    assert resolve_text_view("auto", **common, encoder_path="d", drops_tokens=False) == "reencoded"
    assert resolve_text_view("stored", **common, encoder_path="d", drops_tokens=True) == "stored"
    assert (
        resolve_text_view(
            "auto", dataset="x", contextual=False, has_ids=False, encoder_path=None, drops_tokens=True
        )
        == "noncontextual"
    )
    with pytest.raises(ConfigError, match="--bert-path DIR") as err:
        resolve_text_view("auto", **common, encoder_path=None, drops_tokens=True)
    assert "\n" not in str(err.value) and "--text-view stored" in str(err.value)
    # reencoded asked for without an encoder: says so, not that tokens are dropped (none is here).
    with pytest.raises(ConfigError, match="--text-view reencoded needs the encoder") as err:
        resolve_text_view("reencoded", **common, encoder_path=None, drops_tokens=False)
    assert "drops no token" in str(err.value) and "leaves the dropped words" not in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="needs the encoder") as err:
        resolve_text_view("reencoded", **common, encoder_path=None, drops_tokens=True)
    assert "drops no token" not in str(err.value)
    with pytest.raises(ConfigError, match="needs token ids"):
        resolve_text_view(
            "reencoded",
            dataset="iemocap",
            contextual=True,
            has_ids=False,
            encoder_path="d",
            drops_tokens=False,
        )
    with pytest.raises(ConfigError, match="without token ids"):
        resolve_text_view(
            "auto", dataset="iemocap", contextual=True, has_ids=False, encoder_path="d", drops_tokens=True
        )
    with pytest.raises(UnknownNameError):
        resolve_text_view("leaky", **common, encoder_path=None, drops_tokens=False)


def test_token_drops_without_an_encoder_are_refused(pickle_path):
    with pytest.raises(ConfigError, match="contextual"):
        _dm(pickle_path, test=[INTRA])
    assert _dm(pickle_path, test=[INTER]).text_view == "intact"  # whole modalities: nothing to re-encode
    assert _dm(pickle_path, test=[INTRA], text_view="stored").text_view == "stored"
    with pytest.raises(ConfigError, match="contextual"):  # a policy that drops tokens counts too
        _dm(pickle_path, test=[INTER], policy="lnln")


def test_every_view_comes_from_one_encoder(pickle_path, tiny_bert):
    dm = _dm(pickle_path, test=[INTRA], bert_path=tiny_bert)
    assert dm.text_view == "reencoded" and dm.text_encoder_fingerprint == TextReencoder(tiny_bert).fingerprint
    # The fake file's stored text is random, not this encoder's: said once, and replaced by the encoder's.
    assert any("does not reproduce the stored text" in m for m in dm.caught)
    encoder = TextReencoder(tiny_bert)
    for split in ("train", "valid", "test"):
        columns = dm.data.splits[split]
        expected = encoder.encode(torch.from_numpy(np.asarray(columns["text_ids"])))
        torch.testing.assert_close(
            torch.from_numpy(np.asarray(columns["text"])), expected, atol=1e-5, rtol=1e-5
        )
    again = _dm(pickle_path, test=[INTRA], bert_path=tiny_bert)  # cached: no second pass, no second warning
    assert not any("does not reproduce" in m for m in again.caught)


def test_missing_view_is_the_encoding_of_the_damaged_sentence(pickle_path, tiny_bert):
    dm = _dm(pickle_path, test=[Setting("intra", rate=1.0), INTRA], bert_path=tiny_bert)
    batch = dm.dataset("test")[np.arange(4)]
    for setting in dm.test:
        out = dm.missing_view(batch, setting, "test")
        keep, ids = out["text_keep"], out["text_ids"]
        assert ((ids[:, 0] == UNK_TOKEN_ID) == (batch["text_valid"] & ~keep)).all()
        expected = torch.where(keep[..., None], TextReencoder(tiny_bert).encode(ids), 0)
        torch.testing.assert_close(out["text"], expected)
        cached = dm.missing_view(batch, setting, "test", cached=True)
        torch.testing.assert_close(cached["text"], out["text"], atol=1e-5, rtol=1e-5)
    # At rate 1 only [CLS]/[SEP] remain, recomputed from [CLS] [UNK]... [SEP]: no word survives in them.
    out = dm.missing_view(batch, Setting("intra", rate=1.0), "test")
    stored = torch.from_numpy(np.asarray(dm.data.splits["test"]["text"][:4]))
    assert not torch.allclose(out["text"][:, 0], stored[:, 0])


def test_training_batches_reencode_only_when_the_policy_drops_tokens(pickle_path, tiny_bert):
    dm = _dm(pickle_path, test=[INTRA], policy="lnln", bert_path=tiny_bert)
    batch = dm.dataset("train")[np.arange(6)]
    out = dm.reencode(dm.train_policy.apply(batch, seed=1, epoch=0, split_size=6, keep_text_boundaries=True))
    expected = torch.where(out["text_keep"][..., None], TextReencoder(tiny_bert).encode(out["text_ids"]), 0)
    torch.testing.assert_close(out["text"], expected)
    torch.testing.assert_close(out["text_full"], batch["text"])  # the complete view: the same encoder's


def test_an_encoder_of_another_width_is_refused(pickle_path, tmp_path):
    other = fake.make_tiny_bert(tmp_path / "wide", hidden=16)
    with pytest.raises(ConfigError, match="16-d features"):
        _dm(pickle_path, test=[INTRA], bert_path=other)


def test_a_missing_encoder_directory_is_one_line(pickle_path, tmp_path):
    with pytest.raises(Exception, match="no text encoder at") as err:
        _dm(pickle_path, test=[INTRA], bert_path=tmp_path / "nowhere")
    assert "\n" not in str(err.value)


def test_a_static_matched_policy_reencodes_its_training_split_once(pickle_path, tiny_bert):
    dm = _dm(pickle_path, test=[INTRA], policy="matched", bert_path=tiny_bert)
    assert dm.train_policy.fixed_setting == INTRA
    rows = np.array([4, 1, 3])  # any rows, in any order: the view is read by index
    batch = dm.dataset("train")[rows]
    applied = dm.train_policy.apply(
        batch, seed=1, epoch=3, split_size=dm.split_sizes["train"], keep_text_boundaries=True
    )
    direct = dm.reencode(dict(applied))
    via_view = dm._training_text(dict(applied))
    torch.testing.assert_close(via_view["text"], direct["text"], atol=1e-5, rtol=1e-5)
    assert ("train", INTRA) in dm._fixed_text  # made once for the run, read by index from then on
    resampled = build_policy("matched", matched=INTRA, resample=True)
    lnln = build_policy("lnln", matched=INTRA)
    assert resampled.fixed_setting is None and lnln.fixed_setting is None  # new masks every epoch
