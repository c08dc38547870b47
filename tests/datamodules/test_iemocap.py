import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from msabench.datamodules import build_datamodule
from msabench.errors import ConfigError, DataFormatError, DatasetNotFoundError

FAKE = Path(__file__).parents[1] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)


def build(**options):
    return build_datamodule("iemocap", train_policy=None, validation=[], test=[], seed=0, **options)


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    return fake.make_iemocap(tmp_path / "IEMOCAP", folds=(1, 3))


def names(root, fold, prefix):
    ids = np.load(root / "target" / str(fold) / f"{prefix}_int2name.npy", allow_pickle=True)
    return [entry[0].decode() for entry in ids]


def test_layout_is_read(root):
    dm = build(data_path=root, fold=3)
    dm.setup()
    dims = dm.dims
    assert (dims.audio_dim, dims.vision_dim, dims.text_dim) == (6, 4, 8)
    assert dims.task == "classification" and dims.num_classes == 4 and dims.metric_family == "iemocap"
    assert not dims.has_text_ids and not dm.keep_text_boundaries
    assert dm.split_sizes == {"train": 7, "valid": 3, "test": 4}
    assert len(dm.sha256) == 64

    test_ids = names(root, 3, "tst")
    one_hot = np.load(root / "target" / "3" / "tst_label.npy")
    batch = dm.dataset("test")[[0, 1, 2, 3]]
    np.testing.assert_array_equal(batch["label"].numpy(), one_hot.argmax(1))

    with (
        h5py.File(root / "A" / "comparE.h5") as audio_file,
        h5py.File(root / "L" / "bert_large.h5") as text_file,
    ):
        raw_audio = audio_file[test_ids[1]][()]
        raw_text = text_file[test_ids[1]][()]
        every_length = {
            split: [len(audio_file[n]) for n in names(root, 3, p)]
            for split, p in (("train", "trn"), ("valid", "val"), ("test", "tst"))
        }
    # fold-3 training statistics: mean 3, std 2, and a zero std (last feature) taken as 1
    expected = (raw_audio - 3.0) / np.array([2, 2, 2, 2, 2, 1], dtype=np.float32)
    length = len(raw_audio)
    np.testing.assert_allclose(batch["audio"][1, :length].numpy(), expected, rtol=1e-6)
    assert batch["audio"][1, length:].eq(0).all() and batch["audio_valid"][1].sum() == length
    np.testing.assert_array_equal(batch["text"][1, : len(raw_text)].numpy(), raw_text)
    # every split is padded to the longest sequence of the fold
    assert dims.audio_len == max(max(v) for v in every_length.values()) == batch["audio"].shape[1]


def test_empty_face_track(root):
    dm = build(data_path=root)
    dm.setup()
    lengths = np.concatenate(
        [dm.dataset(s).columns["vision_valid"].sum(1) for s in ("train", "valid", "test")]
    )
    assert (lengths == 0).sum() == 1


def test_integer_labels_and_target_beside_features(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    root = fake.make_iemocap(tmp_path / "features", one_hot=False, target_beside=True)
    dm = build(data_path=root)
    dm.setup()
    labels = np.load(tmp_path / "target" / "1" / "trn_label.npy")
    np.testing.assert_array_equal(dm.dataset("train").columns["label"], labels)


def test_data_root(root, monkeypatch):
    monkeypatch.setenv("MSABENCH_DATA", str(root.parent))
    dm = build(fold="1")
    dm.setup()
    assert dm.split_sizes["test"] == 4


def test_errors(root, tmp_path, monkeypatch):
    monkeypatch.delenv("MSABENCH_DATA", raising=False)
    with pytest.raises(ConfigError, match="fold must be an integer from 1 to 10, got 11"):
        build(data_path=root, fold=11)
    with pytest.raises(DatasetNotFoundError, match="--data-path DIR"):
        build().setup()
    with pytest.raises(DatasetNotFoundError, match="feature root not found: tried .*nowhere"):
        build(data_path=tmp_path / "nowhere").setup()
    with pytest.raises(DatasetNotFoundError, match=r"fold 2: missing .*2/trn_label.npy"):
        build(data_path=root, fold=2).setup()
    with pytest.raises(DatasetNotFoundError, match="target folder not found"):
        build(data_path=root, target_root=tmp_path / "no-target").setup()


def test_missing_utterance(root):
    first = names(root, 1, "trn")[0]
    with h5py.File(root / "V" / "denseface.h5", "a") as handle:
        del handle[first]
    with pytest.raises(DataFormatError, match=f"denseface.h5 has no utterance '{first}'"):
        build(data_path=root).setup()


def test_label_count_mismatch(root):
    np.save(root / "target" / "1" / "val_label.npy", np.eye(4, dtype=np.float32)[:2])
    with pytest.raises(DataFormatError, match="valid: 2 labels but 3 ids"):
        build(data_path=root).setup()
