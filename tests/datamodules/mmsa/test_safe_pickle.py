import importlib.util
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from msabench.datamodules.mmsa.safe_pickle import load_npy, safe_load, safe_loads
from msabench.errors import DataFormatError, UnsafePickleError

FAKE = Path(__file__).parents[2] / "data" / "make_fake_data.py"


def fake_data():
    spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAIN = {
    "float": np.arange(12, dtype=np.float32).reshape(3, 4),
    "int64": np.array([[101, 7, 102, 0]], dtype=np.int64),
    "strings": np.array(["03bSnISJMiM$_$11", "b"], dtype=object),
    "unicode": np.array(["ab", "c"]),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "scalars": [np.float64(1.5), np.int64(3), 2, 2.5, "x", b"y", None, True, 1 + 2j],
    "containers": ({1, 2}, frozenset({3}), (4, 5)),
    "dtype": np.dtype("float32"),
}


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_data_round_trips(protocol):
    loaded = safe_loads(pickle.dumps(PLAIN, protocol=protocol))
    assert loaded.keys() == PLAIN.keys()
    for key in ("float", "int64", "unicode", "fortran"):
        np.testing.assert_array_equal(loaded[key], PLAIN[key])
        assert loaded[key].dtype == PLAIN[key].dtype
    assert loaded["strings"].dtype == object and list(loaded["strings"]) == list(PLAIN["strings"])
    assert loaded["scalars"] == PLAIN["scalars"]
    assert loaded["containers"] == PLAIN["containers"]
    assert loaded["dtype"] == np.float32


def test_refuses_code_and_runs_nothing(tmp_path):
    fake = fake_data()
    # Control: an ordinary unpickler does run the payload, so the check below can fail.
    control = tmp_path / "control"
    pickle.loads(fake.make_unsafe_pickle(tmp_path / "control.pkl", control).read_bytes())
    assert control.exists()

    marker = tmp_path / "marker"
    path = fake.make_unsafe_pickle(tmp_path / "unsafe.pkl", marker)
    with pytest.raises(UnsafePickleError, match="pathlib") as info:
        safe_load(path)
    assert not marker.exists()
    assert str(path) in str(info.value)


def test_refuses_os_system(tmp_path):
    class Shell:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    with pytest.raises(UnsafePickleError, match=r"'(posix|nt|os)\.system'"):
        safe_loads(pickle.dumps({"x": Shell()}))
    assert not (tmp_path / "ran").exists()


def test_refuses_other_numpy_callables():
    # numpy is admitted only for plain arrays: its other callables (here a subclass) stay out.
    with pytest.raises(UnsafePickleError, match="numpy"):
        safe_loads(pickle.dumps(np.ma.masked_array([1.0, 2.0], mask=[0, 1])))


def test_not_a_pickle():
    with pytest.raises(DataFormatError, match="not a readable pickle"):
        safe_load(io.BytesIO(b"this is text, not a pickle"), source="notes.txt")


def test_load_npy_object_ids(tmp_path):
    ids = np.empty(2, dtype=object)
    ids[0], ids[1] = np.array([b"Ses01F_impro01_F000"]), np.array([b"Ses01M_script02_M011"])
    np.save(tmp_path / "ids.npy", ids, allow_pickle=True)
    loaded = load_npy(tmp_path / "ids.npy")
    assert loaded.shape == (2,) and loaded[1][0] == b"Ses01M_script02_M011"
    np.save(tmp_path / "numbers.npy", np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(load_npy(tmp_path / "numbers.npy"), np.eye(3))


def test_load_npy_refuses_unsafe_objects(tmp_path):
    marker = tmp_path / "marker"
    payload = np.empty(1, dtype=object)
    payload[0] = fake_data()._Payload(str(marker))
    np.save(tmp_path / "bad.npy", payload, allow_pickle=True)
    with pytest.raises(UnsafePickleError):
        load_npy(tmp_path / "bad.npy")
    assert not marker.exists()
