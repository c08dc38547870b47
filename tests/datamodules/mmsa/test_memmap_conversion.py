"""The memory-mapped path: a pickle converted with its arrays spilled to files, not into RAM."""

import importlib.util
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from msabench.datamodules import build_datamodule
from msabench.datamodules.mmsa import safe_pickle
from msabench.datamodules.mmsa.safe_pickle import SpillingUnpickler, safe_load

FAKE = Path(__file__).parents[2] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_spilled_arrays_equal_the_pickled_ones(tmp_path, protocol):
    data = {
        "train": {
            "big": np.arange(4000, dtype=np.float32).reshape(10, 20, 20),
            "fortran": np.asfortranarray(np.arange(600, dtype=np.float64).reshape(20, 30)),
            "ids": np.array(["a$_$0", "b$_$1"], dtype=object),
            "small": np.arange(3),
        },
        "config": {"n": 1},
    }
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    spill = tmp_path / "spill"
    spill.mkdir()
    with open(path, "rb") as handle:
        out = SpillingUnpickler(handle, str(path), spill, threshold=1000).load()
    for key, value in data["train"].items():
        np.testing.assert_array_equal(out["train"][key], value)
        assert out["train"][key].dtype == value.dtype
    assert out["config"] == {"n": 1}
    if protocol >= 3:  # protocol 2 pickles bytes as latin1 text: read into RAM as before
        assert isinstance(out["train"]["big"], np.memmap) and len(list(spill.iterdir())) == 2


def test_spilling_keeps_the_restrictions(tmp_path):
    marker = tmp_path / "ran"
    path = fake.make_unsafe_pickle(tmp_path / "evil.pkl", marker)
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(Exception, match="refused to load"):
        safe_load(path, spill_dir=spill)
    assert not marker.exists()


def test_memory_mapped_load_equals_the_in_ram_load(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(safe_pickle, "SPILL_THRESHOLD", 256)  # spill every feature array of the tiny file
    path = fake.make_mmsa(tmp_path / "mosi.pkl")

    def load(mmap):
        dm = build_datamodule(
            "mosi", data_path=path, train_policy=None, validation=[], test=[], seed=0, mmap=mmap
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dm.setup()
        return dm

    in_ram, mapped = load(False), load(True)
    arrays = tmp_path / "cache" / "arrays"
    assert [p.name for p in arrays.iterdir() if ".spill." in p.name] == []  # the spilled copy is removed
    for split in ("train", "valid", "test"):
        assert in_ram.data.splits[split].keys() == mapped.data.splits[split].keys()
        for key, value in in_ram.data.splits[split].items():
            assert isinstance(mapped.data.splits[split][key], np.memmap)
            np.testing.assert_array_equal(mapped.data.splits[split][key], value)
    batch = mapped.dataset("train")[np.array([3, 0, 5])]
    np.testing.assert_array_equal(batch["audio"].numpy(), in_ram.data.splits["train"]["audio"][[3, 0, 5]])
    # A cache that exists is read without converting again.
    stamp = (arrays / mapped.data.cache_key / "complete").stat().st_mtime_ns
    assert (arrays / load(True).data.cache_key / "complete").stat().st_mtime_ns == stamp


def test_large_synthetic_files_are_memory_mapped(tmp_path, monkeypatch):
    from msabench.datamodules import mmsa

    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(mmsa, "MMAP_THRESHOLD", 1)  # every file counts as large
    dm = build_datamodule("synthetic", train_policy=None, validation=[], test=[], seed=0, n_scale=0.01)
    dm.setup()
    assert isinstance(dm.data.splits["train"]["audio"], np.memmap)
