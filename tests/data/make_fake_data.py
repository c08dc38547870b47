"""Write tiny fake data files in the real formats (MMSA pickles, the MMIN IEMOCAP layout, an unsafe pickle).

Tests import these functions and write into their ``tmp_path``; run as a script to write a sample set::

    python tests/data/make_fake_data.py OUT_DIR

Shapes are tiny but keep every quirk of the real files: ``-inf`` in audio, lengths as plain lists (option), no
lengths in aligned files, object arrays of strings, int64 ``text_bert`` with [CLS]/[SEP] and 0-padding, SIMS
unimodal labels, one-hot IEMOCAP labels, ``int2name`` entries as 1-element arrays of byte strings.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# Tiny MOSI-like shapes: (padded length, feature size) per modality.
TEXT_LEN, TEXT_DIM = 8, 12
AUDIO_LEN, AUDIO_DIM = 10, 5
VISION_LEN, VISION_DIM = 12, 7
SIZES = {"train": 6, "valid": 3, "test": 4}


def mmsa_split(
    n: int,
    rng: np.random.Generator,
    *,
    aligned: bool = False,
    sims: bool = False,
    lengths_as_list: bool = False,
    text_bert: bool = True,
    neg_inf: bool = True,
) -> dict[str, Any]:
    """One split of an MMSA pickle with ``n`` samples."""
    audio_len = TEXT_LEN if aligned else AUDIO_LEN
    vision_len = TEXT_LEN if aligned else VISION_LEN
    text_lengths = rng.integers(3, TEXT_LEN + 1, size=n)
    text_lengths[0] = TEXT_LEN  # one sample without padding
    ids = np.zeros((n, 3, TEXT_LEN), dtype=np.int64)
    positions = np.arange(TEXT_LEN)
    ids[:, 0] = np.where(positions < text_lengths[:, None], rng.integers(1000, 30000, size=(n, TEXT_LEN)), 0)
    ids[:, 0, 0] = 101
    ids[np.arange(n), 0, text_lengths - 1] = 102
    ids[:, 1] = positions < text_lengths[:, None]
    audio = rng.standard_normal((n, audio_len, AUDIO_DIM)).astype(np.float32)
    if neg_inf:
        audio[0, 1, 2] = -np.inf  # COVAREP's log(0)
        audio[n - 1, 0, 0] = -np.inf
    split: dict[str, Any] = {
        "raw_text": np.array([f"utterance {i}" for i in range(n)], dtype=object),
        "id": np.array([f"video{i // 2}$_${i % 2}" for i in range(n)], dtype=object),
        "text": rng.standard_normal((n, TEXT_LEN, TEXT_DIM)).astype(np.float32),
        "audio": audio,
        "vision": rng.standard_normal((n, vision_len, VISION_DIM)).astype(np.float32),
        "annotations": np.array(["Positive"] * n, dtype=object),
        "classification_labels": np.full(n, 2.0, dtype=np.float32),
    }
    if text_bert:
        split["text_bert"] = ids
    if not aligned:
        audio_lengths = rng.integers(1, AUDIO_LEN + 1, size=n)
        vision_lengths = rng.integers(1, VISION_LEN + 1, size=n)
        split["audio_lengths"] = audio_lengths.tolist() if lengths_as_list else audio_lengths
        split["vision_lengths"] = vision_lengths.tolist() if lengths_as_list else vision_lengths
    if sims:
        split["regression_labels"] = (rng.integers(-5, 6, size=n) / 5).astype(np.float32)
        for key in ("T", "A", "V"):
            split[f"regression_labels_{key}"] = (rng.integers(-5, 6, size=n) / 5).astype(np.float32)
    else:
        labels = np.round(rng.uniform(-3, 3, size=n), 1).astype(np.float32)
        labels[1] = 0.0
        split["regression_labels"] = labels
    return split


def make_tiny_bert(path: str | Path, *, hidden: int = TEXT_DIM, seed: int = 0) -> Path:
    """A randomly initialised one-layer BERT in Hugging Face format, as small as a real one is large.

    It stands for the BERT that MMSA's ``text`` features were extracted with: the text view re-encodes
    [UNK]-substituted ids with it. ``hidden`` must equal the fake data's text feature size.
    """
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    BertModel(config).eval().save_pretrained(path)
    return Path(path)


def make_mmsa(path: str | Path, *, seed: int = 0, config: bool = False, **options: Any) -> Path:
    """Write a tiny MMSA pickle (options as :func:`mmsa_split`)."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {name: mmsa_split(n, rng, **options) for name, n in SIZES.items()}
    if config:
        data["config"] = {"feature_extractor": "fake", "seq_lens": [TEXT_LEN, AUDIO_LEN, VISION_LEN]}
    return write_pickle(data, path)


def write_pickle(data: Any, path: str | Path) -> Path:
    """Pickle ``data`` to ``path`` (protocol 4, as the MMSA files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=4)
    return path


class _Payload:
    """An object whose unpickling would create ``marker`` (a stand-in for arbitrary code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.marker),))


def make_unsafe_pickle(path: str | Path, marker: str | Path) -> Path:
    """A pickle shaped like MMSA data whose loading would create ``marker`` if code ran."""
    data = {"train": {"text": np.zeros((1, 2, 3), np.float32), "payload": _Payload(str(marker))}}
    return write_pickle(data, path)


IEMOCAP_DIMS = {"A": ("comparE", 6), "V": ("denseface", 4), "L": ("bert_large", 8)}
IEMOCAP_SIZES = {"trn": 7, "val": 3, "tst": 4}


def make_iemocap(
    root: str | Path,
    *,
    folds: tuple[int, ...] = (1,),
    seed: int = 0,
    one_hot: bool = True,
    target_beside: bool = False,
) -> Path:
    """Write the MMIN IEMOCAP layout under ``root`` (feature root; targets in ``root/target`` or beside it).

    Returns:
        The feature root.
    """
    import h5py

    rng = np.random.default_rng(seed)
    root = Path(root)
    total = sum(IEMOCAP_SIZES.values())
    names = [f"Ses0{1 + i % 5}F_impro0{i % 7}_F{i:03d}" for i in range(total)]
    lengths = {
        "A": rng.integers(2, 15, size=total),
        "V": rng.integers(1, 6, size=total),
        "L": rng.integers(1, 9, size=total),
    }
    lengths["V"][0] = 0  # an utterance without a face track
    for folder, (stem, dim) in IEMOCAP_DIMS.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        with h5py.File(root / folder / f"{stem}.h5", "w") as handle:
            for i, name in enumerate(names):
                handle[name] = rng.standard_normal((lengths[folder][i], dim)).astype(np.float32) * 3 + 1
    with h5py.File(root / "A" / "comparE_mean_std.h5", "w") as handle:
        for fold in range(1, 11):
            group = handle.create_group(str(fold))
            group["mean"] = np.full(IEMOCAP_DIMS["A"][1], float(fold), dtype=np.float32)
            std = np.full(IEMOCAP_DIMS["A"][1], 2.0, dtype=np.float32)
            std[-1] = 0.0  # a constant feature
            group["std"] = std
    target = (root.parent if target_beside else root) / "target"
    for fold in folds:
        order = rng.permutation(total)
        start = 0
        (target / str(fold)).mkdir(parents=True, exist_ok=True)
        for prefix, n in IEMOCAP_SIZES.items():
            chosen = order[start : start + n]
            start += n
            classes = rng.integers(0, 4, size=n)
            labels = np.eye(4, dtype=np.float32)[classes] if one_hot else classes
            np.save(target / str(fold) / f"{prefix}_label.npy", labels)
            # MMIN stores each id as a 1-element array of a byte string, in an object array.
            int2name = np.empty(n, dtype=object)
            for j, index in enumerate(chosen):
                int2name[j] = np.array([names[index].encode()])
            np.save(target / str(fold) / f"{prefix}_int2name.npy", int2name, allow_pickle=True)
    return root


def main() -> None:
    """Write one file of each kind into OUT_DIR."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    make_mmsa(out / "MOSI" / "Processed" / "unaligned_50.pkl")
    make_mmsa(out / "MOSI" / "Processed" / "aligned_50.pkl", aligned=True)
    make_mmsa(out / "SIMS" / "Processed" / "unaligned_39.pkl", sims=True)
    make_iemocap(out / "IEMOCAP")
    print(f"wrote fake data under {out}")


if __name__ == "__main__":
    main()
