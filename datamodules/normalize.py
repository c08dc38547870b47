"""Feature normalisation as a data option: audio and vision z-scored with the training split's statistics.

``train_zscore`` computes, per feature dimension of audio and of vision, the mean and the population standard
deviation over the **valid (non-padded) frames of the training split only**, and maps every valid frame of
every split to ``(x - mean) / (std + 1e-6)``; padding stays exactly 0 and text is left as stored. This is the
transform of MITR-DNet's SIMS preprocessing (see ``models/mitr_dnet/README.md``). Statistics are accumulated
in float64 over blocks of samples (never the whole array in float64 at once), remembered in the cache
directory by the data's cache key (the file's SHA-256), and, for memory-mapped data, the normalised arrays are
written once beside the loaded cache and memory-mapped from there.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from msabench.datamodules.cache import build_split_cache, cache_root, load_split_cache
from msabench.errors import ConfigError

Normalization = Literal["none", "train_zscore"]
NORMALIZATIONS: Final[tuple[str, ...]] = ("none", "train_zscore")
NORMALIZED_MODALITIES: Final[tuple[str, str]] = ("audio", "vision")
# MITR-DNet's preprocessing adds this to the standard deviation, so a constant dimension maps to 0.
ZSCORE_EPS: Final[float] = 1e-6
# Bump when the transform changes, so cached statistics and arrays of an older one are never reused.
NORMALIZATION_VERSION: Final[int] = 1
# Bytes of float64 a statistics block may hold (a SIMS vision block of 512 samples would be 1.5 GB).
BLOCK_BYTES: Final[int] = 1 << 26

if TYPE_CHECKING:
    from msabench.datamodules.base import LoadedData


def check_normalization(name: str) -> Normalization:
    """``name`` if it is a known normalisation.

    Raises:
        ConfigError: an unknown name (lists the valid ones).
    """
    if name not in NORMALIZATIONS:
        raise ConfigError(f"unknown data.normalize '{name}': use one of {', '.join(NORMALIZATIONS)}")
    return name  # type: ignore[return-value]


def variant_suffix(normalization: Normalization) -> str:
    """What a normalisation adds to the data variant recorded in result rows (``unaligned+zscore``)."""
    return "" if normalization == "none" else "+zscore"


def _block_rows(array: np.ndarray) -> int:
    per_sample = int(np.prod(array.shape[1:])) * 8
    return max(1, BLOCK_BYTES // max(per_sample, 1))


def train_statistics(features: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and population std of ``features`` (N, L, D) over the steps where ``valid``.

    Blocks of samples are reduced in float64 and merged with the pairwise update of Chan et al., which stays
    exact where a running sum of squares would cancel (audio dimensions with large offsets).

    Returns:
        mean (D,) and std (D,), float64; zeros where no step is valid.
    """
    dim = features.shape[2]
    count, mean, m2 = 0, np.zeros(dim), np.zeros(dim)
    rows = _block_rows(features)
    for start in range(0, len(features), rows):
        frames = np.asarray(features[start : start + rows], dtype=np.float64)[valid[start : start + rows]]
        n = len(frames)
        if n == 0:
            continue
        block_mean = frames.mean(axis=0)
        block_m2 = ((frames - block_mean) ** 2).sum(axis=0)
        total = count + n
        delta = block_mean - mean
        mean = mean + delta * (n / total)
        m2 = m2 + block_m2 + delta**2 * (count * n / total)
        count = total
    std = np.sqrt(m2 / count) if count else np.zeros(dim)
    return mean, std


def apply_zscore(
    features: np.ndarray, valid: np.ndarray, mean: np.ndarray, std: np.ndarray, out: np.ndarray
) -> None:
    """Write ``(features - mean) / (std + eps)`` on valid steps and 0 on padding into ``out``, in blocks."""
    shift = mean.astype(np.float32)
    scale = (1.0 / (std + ZSCORE_EPS)).astype(np.float32)
    rows = _block_rows(features)
    for start in range(0, len(features), rows):
        block = np.asarray(features[start : start + rows], dtype=np.float32)
        normalised = (block - shift) * scale
        normalised *= valid[start : start + rows, :, None]
        out[start : start + rows] = normalised


def _statistics(data: LoadedData, stats_file: Path | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if stats_file is not None and stats_file.is_file():
        stored = json.loads(stats_file.read_text())
        return {m: (np.asarray(stored[m]["mean"]), np.asarray(stored[m]["std"])) for m in stored}
    train = data.splits["train"]
    stats = {m: train_statistics(train[m], train[f"{m}_valid"]) for m in NORMALIZED_MODALITIES}  # type: ignore[arg-type]
    if stats_file is not None:
        stats_file.parent.mkdir(parents=True, exist_ok=True)
        body = {m: {"mean": s[0].tolist(), "std": s[1].tolist()} for m, s in stats.items()}
        tmp = stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(stats_file)
    return stats


def normalize_data(
    data: LoadedData, normalization: Normalization, cache_dir: str | Path | None = None
) -> LoadedData:
    """The data with audio and vision normalised as named (``none`` returns ``data`` unchanged).

    Arrays held in RAM are normalised in place; memory-mapped ones are written once to a cache directory
    beside theirs (named by the data's cache key) and memory-mapped from there.

    Raises:
        ConfigError: data whose audio/vision are not dense arrays (IEMOCAP's are normalised by its loader).
    """
    if normalization == "none":
        return data
    for split in data.splits.values():
        for m in NORMALIZED_MODALITIES:
            if not isinstance(split[m], np.ndarray):
                raise ConfigError(
                    f"data.normalize={normalization} needs dense audio/vision arrays and {data.source} has "
                    "none (IEMOCAP's audio is already normalised with its fold's statistics): use "
                    "data.normalize=none"
                )
    root = cache_root(cache_dir) / "arrays"
    key = f"{data.cache_key}-zscore-v{NORMALIZATION_VERSION}" if data.cache_key else None
    stats = _statistics(data, root / f"{key}.json" if key else None)
    mapped = any(isinstance(s[m], np.memmap) for s in data.splits.values() for m in NORMALIZED_MODALITIES)
    if not mapped:
        for split in data.splits.values():
            for m in NORMALIZED_MODALITIES:
                array = split[m]
                assert isinstance(array, np.ndarray)
                if not array.flags.writeable:
                    split[m] = array = array.copy()
                apply_zscore(array, split[f"{m}_valid"], *stats[m], out=array)  # type: ignore[arg-type]
        return data
    if key is None:
        raise ConfigError(
            f"data.normalize={normalization}: {data.source} has no cache key to store its arrays under"
        )
    directory = root / key
    layout = {
        s: {m: (data.splits[s][m].shape, np.dtype(np.float32)) for m in NORMALIZED_MODALITIES}
        for s in data.splits
    }

    def fill(split: str, modality: str, out: np.ndarray) -> None:
        columns = data.splits[split]
        apply_zscore(columns[modality], columns[f"{modality}_valid"], *stats[modality], out=out)  # type: ignore[arg-type]

    build_split_cache(directory, layout, fill)
    normalised = load_split_cache(directory)
    assert normalised is not None  # just written
    splits = {s: {**columns, **normalised[s]} for s, columns in data.splits.items()}
    return dataclasses.replace(data, splits=splits)
