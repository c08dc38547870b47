import hashlib
import importlib.util
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from msabench.datamodules import build_datamodule
from msabench.datamodules.mmsa import MMSA_FILES, MMSAFile, check_published_sha256, load_mmsa
from msabench.errors import ConfigError, DataFormatError, DatasetNotFoundError

FAKE = Path(__file__).parents[2] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)


def build(name, path=None, **options):
    return build_datamodule(
        name, data_path=path, train_policy=None, validation=[], test=[], seed=0, **options
    )


def loaded(name, path, **options):
    dm = build(name, path, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fake files are not the published ones
        dm.setup()
    return dm


def raw(path):
    with open(path, "rb") as handle:
        return pickle.load(handle)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_unaligned_quirks(tmp_path, cache):
    path = fake.make_mmsa(tmp_path / "mosi.pkl", lengths_as_list=True, config=True)
    dm = loaded("mosi", path)
    source = raw(path)
    dims = dm.dims
    assert (
        dims.text_len,
        dims.text_dim,
        dims.audio_len,
        dims.audio_dim,
        dims.vision_len,
        dims.vision_dim,
    ) == (
        8,
        12,
        10,
        5,
        12,
        7,
    )
    assert dims.has_text_ids and dims.task == "regression" and dims.num_classes is None
    assert dims.metric_family == "mosi" and dm.keep_text_boundaries
    assert dm.split_sizes == {"train": 6, "valid": 3, "test": 4}
    assert dm.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    train = dm.dataset("train").columns
    # -inf in audio becomes 0; every other valid value is kept
    assert np.isneginf(source["train"]["audio"][0, 1, 2]) and train["audio"][0, 1, 2] == 0
    kept = np.isfinite(source["train"]["audio"]) & train["audio_valid"][..., None]
    np.testing.assert_array_equal(train["audio"][kept], source["train"]["audio"][kept])
    # lengths given as plain lists give the padding masks
    lengths = np.asarray(source["train"]["audio_lengths"])
    np.testing.assert_array_equal(train["audio_valid"].sum(1), lengths)
    assert train["audio_valid"][0, : lengths[0]].all() and not train["audio_valid"][0, lengths[0] :].any()
    # text validity from the attention mask; ids kept as int64
    np.testing.assert_array_equal(train["text_valid"], source["train"]["text_bert"][:, 1] == 1)
    assert train["text_ids"].dtype == np.int64 and train["text_ids"][0, 0, 0] == 101
    assert train["label"].dtype == np.float32 and train["label"][1] == 0.0
    assert train["text"].dtype == np.float32


@pytest.mark.parametrize("mmap", [False, True])
def test_padding_is_zero_and_real_steps_unchanged(tmp_path, cache, mmap):
    # The fake files, like MMSA's BERT text features, hold non-zero values at padded positions.
    path = fake.make_mmsa(tmp_path / "mosi.pkl", neg_inf=False)
    source = raw(path)
    for split in ("train", "valid", "test"):
        columns = loaded("mosi", path, mmap=mmap).dataset(split).columns
        for modality in ("text", "audio", "vision"):
            valid = columns[f"{modality}_valid"]
            assert (~valid).any() and np.abs(source[split][modality][~valid]).min() > 0
            assert not columns[modality][~valid].any()
            np.testing.assert_array_equal(columns[modality][valid], source[split][modality][valid])


def test_batches_follow_the_contract(tmp_path, cache):
    dm = loaded("mosi", fake.make_mmsa(tmp_path / "mosi.pkl"))
    batch = dm.dataset("valid")[[2, 0]]
    assert batch["text"].shape == (2, 8, 12) and batch["text"].dtype.is_floating_point
    assert batch["audio"].shape == (2, 10, 5) and batch["vision"].shape == (2, 12, 7)
    for key in ("text_valid", "audio_valid", "vision_valid"):
        assert str(batch[key].dtype) == "torch.bool"
    assert batch["text_ids"].shape == (2, 3, 8) and str(batch["text_ids"].dtype) == "torch.int64"
    assert str(batch["label"].dtype) == "torch.float32"
    assert batch["index"].tolist() == [2, 0]
    assert "label_text" not in batch


def test_aligned_lengths_from_text_mask(tmp_path, cache):
    path = fake.make_mmsa(tmp_path / "aligned.pkl", aligned=True)
    dm = loaded("mosi", path, variant="aligned")
    train = dm.dataset("train").columns
    text_length = raw(path)["train"]["text_bert"][:, 1].sum(1)
    assert dm.dims.audio_len == dm.dims.vision_len == 8
    np.testing.assert_array_equal(train["audio_valid"].sum(1), text_length)
    np.testing.assert_array_equal(train["vision_valid"], train["text_valid"])


def test_without_text_bert(tmp_path, cache):
    dm = loaded("mosi", fake.make_mmsa(tmp_path / "nobert.pkl", aligned=True, text_bert=False))
    train = dm.dataset("train").columns
    assert not dm.dims.has_text_ids and not dm.keep_text_boundaries and "text_ids" not in train
    assert train["text_valid"].all() and train["audio_valid"].all()


def test_sims_unimodal_labels(tmp_path, cache):
    path = fake.make_mmsa(tmp_path / "sims.pkl", sims=True)
    dm = loaded("SIMS", path)
    assert dm.name == "sims" and dm.dims.metric_family == "sims"
    batch = dm.dataset("test")[[0, 1, 2, 3]]
    np.testing.assert_array_equal(batch["label_audio"].numpy(), raw(path)["test"]["regression_labels_A"])
    assert {"label_text", "label_vision"} <= batch.keys()


def test_mosi_ignores_unimodal_keys(tmp_path, cache):
    dm = loaded("mosi", fake.make_mmsa(tmp_path / "sims.pkl", sims=True))
    assert "label_text" not in dm.dataset("train").columns


def test_memory_mapped_cache(tmp_path, cache):
    path = fake.make_mmsa(tmp_path / "mosi.pkl")
    in_ram = loaded("mosi", path).dataset("train").columns
    mapped = loaded("mosi", path, mmap=True).dataset("train").columns
    assert isinstance(mapped["text"], np.memmap) and not isinstance(in_ram["text"], np.memmap)
    for key in in_ram:
        np.testing.assert_array_equal(mapped[key], in_ram[key])
    assert len(list((cache / "arrays").iterdir())) == 1
    batch = loaded("mosi", path, mmap=True).dataset("train")[[4, 1]]
    np.testing.assert_array_equal(batch["text"].numpy(), in_ram["text"][[4, 1]])
    # A worker receives the path, not the data.
    assert len(pickle.dumps(loaded("mosi", path, mmap=True).dataset("train"))) < 4000


def test_data_root_and_env(tmp_path, cache, monkeypatch):
    fake.make_mmsa(tmp_path / "root" / "MOSI" / "Processed" / "unaligned_50.pkl")
    dm = build_datamodule(
        "mosi", data_root=tmp_path / "root", train_policy=None, validation=[], test=[], seed=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm.setup()
    assert dm.split_sizes["train"] == 6
    monkeypatch.setenv("MSABENCH_DATA", str(tmp_path / "root"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build("mosi").setup()


def test_missing_file_says_what_to_get(tmp_path, cache, monkeypatch):
    monkeypatch.delenv("MSABENCH_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        build("mosei", tmp_path / "nowhere.pkl").setup()
    message = str(info.value)
    assert str(tmp_path / "nowhere.pkl") in message and "MMSA" in message
    assert MMSA_FILES["mosei"]["unaligned"].sha256 in message
    with pytest.raises(DatasetNotFoundError, match="--data-root"):
        build("mosi").setup()


def test_unknown_variant():
    with pytest.raises(ConfigError, match="sims has no 'aligned' variant"):
        build("sims", variant="aligned")


def test_checksum_warning(tmp_path, monkeypatch):
    path = fake.make_mmsa(tmp_path / "mosi.pkl")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.warns(UserWarning, match="not a published MMSA mosi file"):
        check_published_sha256("mosi", path, digest)
    monkeypatch.setitem(MMSA_FILES["mosi"], "unaligned", MMSAFile("MOSI/Processed/unaligned_50.pkl", digest))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_published_sha256("mosi", path, digest)  # the published file: silent
    with pytest.warns(UserWarning, match="is the published mosi unaligned file, but the dataset is sims"):
        check_published_sha256("sims", path, digest)


def corrupt(tmp_path, edit):
    path = fake.make_mmsa(tmp_path / "bad.pkl")
    data = raw(path)
    result = edit(data)
    data = (
        result if isinstance(result, list) else data
    )  # a replacement of the whole file, else edited in place
    fake.write_pickle(data, path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: [d["train"]["audio"]], "expected a dict with keys train/valid/test, found list"),
        (lambda d: d.pop("valid"), "no 'valid' split"),
        (lambda d: d["test"].pop("vision"), r"\[test\] has no 'vision'"),
        (
            lambda d: d["train"].update(audio=d["train"]["audio"][:5]),
            r"'audio' has shape \(5, 10, 5\) but 'text' has shape \(6, 8, 12\)",
        ),
        (
            lambda d: d["train"].update(text_bert=d["train"]["text_bert"][:, :, :7]),
            r"'text_bert' has shape \(6, 3, 7\), expected \(N, 3, 8\)",
        ),
        (
            lambda d: d["valid"].update(vision=d["valid"]["vision"][:, :, :6]),
            r"'vision' is \(N, 12, 7\) in train but \(N, 12, 6\) in valid",
        ),
        (
            lambda d: d["train"]["regression_labels"].__setitem__(3, np.nan),
            "1 NaN labels \\(first at sample 3\\)",
        ),
        (
            lambda d: d["train"].update(audio_lengths=[1, 2]),
            "'audio_lengths' has 2 entries but the split has 6 samples",
        ),
        (
            lambda d: d["train"].update(text=np.array(["a"] * 6, dtype=object)),
            "'text' has shape \\(6,\\) and dtype object",
        ),
    ],
)
def test_format_errors(tmp_path, cache, edit, message):
    path = corrupt(tmp_path, edit)
    with pytest.raises(DataFormatError, match=message) as info:
        loaded("mosi", path)
    assert "\n" not in str(info.value)


def test_lengths_above_padding_are_clipped(tmp_path, cache):
    path = corrupt(tmp_path, lambda d: d["train"]["audio_lengths"].__setitem__(0, 99))
    with pytest.warns(UserWarning, match="exceed the padded length 10"):
        dm = build("mosi", path)
        dm.setup()
    assert dm.dataset("train").columns["audio_valid"][0].all()


def test_unexpected_non_finite_values_warn(tmp_path, cache):
    path = corrupt(tmp_path, lambda d: d["train"]["vision"].__setitem__((0, 0, 0), np.nan))
    with pytest.warns(UserWarning, match="'vision' had 1 NaN"):
        build("mosi", path).setup()


def test_load_mmsa_classification(tmp_path, cache):
    path = fake.make_mmsa(tmp_path / "mosi.pkl")
    data = load_mmsa(path, metric_family="iemocap")
    assert data.dims.task == "classification" and data.dims.num_classes == 3
    assert data.splits["train"]["label"].dtype == np.int64


def test_audio_neg_inf_is_silent(tmp_path, cache):
    path = fake.make_mmsa(tmp_path / "mosi.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_mmsa(path, metric_family="mosi")
    assert np.isfinite(data.splits["train"]["audio"]).all()
