"""Broken MMSA pickles, generated: each is refused with one line naming the key, or loaded with a warning."""

from __future__ import annotations

import importlib.util
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msabench.datamodules.mmsa import load_mmsa, read_mmsa_splits
from msabench.errors import DataFormatError, DataWarning

FAKE = Path(__file__).parents[2] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)

FEATURES = ("text", "audio", "vision")
LENGTHS = ("audio_lengths", "vision_lengths")
LABELS = ("regression_labels", "regression_labels_T")
KEYS = (*FEATURES, *LENGTHS, *LABELS, "text_bert")


def clean(sims: bool) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {s: fake.mmsa_split(n, rng, sims=sims, neg_inf=False) for s, n in fake.SIZES.items()}


def _ragged(array: np.ndarray) -> list[Any]:
    rows = [np.asarray(row) for row in array]
    rows[-1] = rows[-1][..., :-1] if rows[-1].ndim else np.array([rows[-1], rows[-1]])
    return rows


def _break(array: np.ndarray, kind: str, rng: np.random.Generator) -> Any:
    """One malformation of one array (the value written back into the split)."""
    array = np.array(array, copy=True)
    index = tuple(int(rng.integers(0, d)) for d in array.shape)
    match kind:
        case "nan" | "posinf" | "neginf":
            out = array.astype(np.float32)
            out[index] = {"nan": np.nan, "posinf": np.inf, "neginf": -np.inf}[kind]
            return out
        case "huge":
            out = array.astype(np.float64)
            out[index] = 1e300  # beyond float32: becomes inf when read as float32
            return out
        case "object":
            return array.astype(object)
        case "strings":
            return array.astype(str)
        case "ragged":
            return _ragged(array)
        case "fewer_rows":
            return array[:-1]
        case "extra_axis":
            return array[..., None]
        case "flat":
            return array.reshape(-1)
        case "empty":
            return array[:0]
        case "negative":
            return -np.abs(array.astype(np.float64)) - 1
        case "too_long":
            return array.astype(np.float64) + 1000
        case "fraction":
            return array.astype(np.float64) + 0.5
        case "scaled":
            return array.astype(np.float64) * 10
        case "complex":
            return array.astype(np.complex64)
    raise AssertionError(kind)


KINDS = (
    "nan",
    "posinf",
    "neginf",
    "huge",
    "object",
    "strings",
    "ragged",
    "fewer_rows",
    "extra_axis",
    "flat",
    "empty",
    "negative",
    "too_long",
    "fraction",
    "scaled",
    "complex",
)


def _read(data: dict[str, Any], family: str) -> tuple[dict[str, Any] | None, str | None, list[str]]:
    """Returns (splits or None, the refusal or None, the data warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            splits = read_mmsa_splits(data, source="bad.pkl", metric_family=family)
            error = None
        except DataFormatError as err:
            splits, error = None, str(err)
    return splits, error, [str(w.message) for w in caught if issubclass(w.category, DataWarning)]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    key=st.sampled_from(KEYS),
    kind=st.sampled_from(KINDS),
    split=st.sampled_from(("train", "valid", "test")),
    seed=st.integers(0, 2**16),
    sims=st.booleans(),
)
def test_every_broken_file_is_refused_naming_the_key_or_loaded_with_a_warning(
    key: str, kind: str, split: str, seed: int, sims: bool
) -> None:
    family = "sims" if sims else "mosi"
    data = clean(sims)
    if key not in data[split]:
        return
    data[split][key] = _break(np.asarray(data[split][key]), kind, np.random.default_rng(seed))
    splits, error, notes = _read(data, family)
    if error is not None:
        assert "\n" not in error and f"'{key}'" in error, error
        assert f"[{split}]" in error or "every split" in error, error
        return
    # Loaded: every value finite, padding zero, and anything that was changed was said.
    for columns in splits.values():
        for feature in FEATURES:
            values = np.asarray(columns[feature])
            assert np.isfinite(values).all()
            assert not values[~np.asarray(columns[f"{feature}_valid"])].any()
        assert np.isfinite(columns["label"]).all()
    repaired = kind in ("nan", "posinf", "huge") or (kind == "neginf" and key != "audio")
    if key in FEATURES and repaired:
        assert any(f"[{split}]: '{key}' had" in n and "replaced by 0" in n for n in notes), notes
    if key in LENGTHS and kind == "too_long":
        assert any(f"[{split}]" in n and f"'{key}'" in n and "clipped" in n for n in notes), notes


def test_nan_in_audio_is_counted_by_split_and_modality(tmp_path: Path) -> None:
    data = clean(sims=False)
    audio = data["valid"]["audio"].copy()
    audio[0, :3, 1] = np.nan
    audio[2, 0, 0] = np.nan
    audio[1, 0, 0] = -np.inf  # COVAREP's log(0): zeroed as MMSA does, not reported
    data["valid"]["audio"] = audio
    path = tmp_path / "nan.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.warns(DataWarning) as caught:
        loaded = load_mmsa(path, metric_family="mosi", mmap=False, cache_dir=tmp_path / "cache")
    (message,) = [str(w.message) for w in caught]
    assert message.endswith("[valid]: 'audio' had 4 NaN values (in 2 of 3 samples); replaced by 0")
    assert np.isfinite(loaded.splits["valid"]["audio"]).all()


def test_memory_mapped_reads_repeat_the_repairs(tmp_path: Path) -> None:
    data = clean(sims=False)
    data["train"]["vision"][1, 0, 0] = np.inf
    path = tmp_path / "inf.pkl"
    path.write_bytes(pickle.dumps(data))
    for _ in range(2):  # written to the cache, then read from it
        with pytest.warns(DataWarning, match=r"\[train\]: 'vision' had 1 \+inf values"):
            load_mmsa(path, metric_family="mosi", mmap=True, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    ("family", "scale", "message"),
    [
        (
            "sims",
            3.0,
            "spans [-3, 3], outside [-1, 1] of the sims family it is read as (sims); they fit the "
            "mosi family: use --dataset mosi or mosei",
        ),
        (
            "mosi",
            5.0,
            "spans [-5, 5], outside [-3, 3] of the mosi family it is read as (mosi or mosei); they fit "
            "no regression family",
        ),
    ],
)
def test_labels_outside_the_family_are_refused_with_the_range_found(
    family: str, scale: float, message: str
) -> None:
    data = clean(sims=False)
    for split in data.values():
        labels = np.linspace(-scale, scale, len(split["regression_labels"]))
        split["regression_labels"] = labels.astype(np.float32)
    _, error, _ = _read(data, family)
    assert error is not None and message in error, error


def test_a_large_mosi_file_with_sims_labels_warns() -> None:
    rng = np.random.default_rng(1)
    data = {s: fake.mmsa_split(n, rng, sims=True) for s, n in {"train": 80, "valid": 20, "test": 20}.items()}
    _, error, notes = _read(data, "mosi")
    assert error is None and any("use --dataset sims" in n for n in notes), notes
