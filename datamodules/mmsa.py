"""MOSI, MOSEI and SIMS: MMSA's processed pickles as stored, padding zeroed (README, Datasets).

The file is a dict with ``train``/``valid``/``test`` (and optionally ``config``); each split a dict of arrays:
``text`` (N, L_t, 768), ``text_bert`` (N, 3, L_t) ids/attention mask/segments, ``audio`` (N, L_a, d_a),
``vision`` (N, L_v, d_v), ``audio_lengths``/``vision_lengths`` (unaligned files only), ``regression_labels``
(N,), SIMS ``regression_labels_T/A/V``, plus ``raw_text``/``id``/``annotations``/``classification_labels``
(not needed here).

Padding is zeroed at load, for every modality: BERT features extracted over padded sequences, as ``text`` is,
are not zero at the [PAD] positions (even with the attention mask) and carry the sentence's context. Every
missing view zeroes the positions it keeps out, padding included, so without this only the complete view
(r = 0) could show those states, and a method trained under a random-rate policy would first meet them at the
r = 0 test point.

Quirks handled as MMSA does: ``-inf`` in audio (COVAREP's log(0)) becomes 0 at load; lengths may be
plain lists; aligned files carry no lengths, so audio/vision take the text attention-mask length (full
length without ``text_bert``); text validity comes from the attention mask (``text_bert`` row 1), all valid
without it; ``text_bert`` is kept as int64 ids. A ``text_lengths`` key, when present and ``text_bert`` is
not, gives the text validity (a suite extension used by ``synthetic-iemocap``).

Repaired with a :class:`~msabench.errors.DataWarning` (the runner records it with the run): any other
non-finite feature value (NaN anywhere, ``+inf``, ``-inf`` outside audio) is set to 0; lengths above the
padded length are clipped to it. Refused with a :class:`~msabench.errors.DataFormatError` that names the
split and key: a missing key, an array that is not rectangular or not numeric, an empty axis, sample counts
that disagree, non-finite, negative or fractional lengths or ids, labels that are not finite or do not fit
the dataset family (MOSI/MOSEI in [-3, 3], SIMS in [-1, 1]).

Every dimension comes from the data. The file's SHA-256 is compared with MMSA's published values (a warning,
never a refusal, for other copies). Files of 1 GiB or more (MOSEI) are converted once into memory-mapped
``.npy`` arrays in the cache directory (``$MSABENCH_CACHE``, default ``~/.cache/msabench``), keyed by the
file's hash; the conversion streams each large array of the pickle into a file and memory-maps it
(:class:`~msabench.datamodules.safe_pickle.SpillingUnpickler`), so it never holds the data in RAM.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from msabench.datamodules.base import (
    SPLITS,
    DataDims,
    LoadedData,
    MetricFamily,
    MSADataModule,
    SplitData,
    TrainingPolicy,
    cache_root,
    file_sha256,
    load_split_cache,
    save_split_cache,
)
from msabench.datamodules.safe_pickle import safe_load
from msabench.errors import ConfigError, DataFormatError, DatasetNotFoundError, DataWarning

DATA_ENV: Final[str] = "MSABENCH_DATA"
Variant = Literal["unaligned", "aligned"]
MMSA_URL: Final[str] = "https://github.com/thuiar/MMSA (processed features)"
MMAP_THRESHOLD: Final[int] = 1 << 30
CACHE_FORMAT: Final[int] = 3  # 2: padding zeroed; 3: load warnings kept beside the cache


@dataclass(frozen=True)
class MMSAFile:
    """A published MMSA file: its path under the data root and SHA-256 (README, Datasets)."""

    relative_path: str
    sha256: str


MMSA_FILES: Final[dict[str, dict[str, MMSAFile]]] = {
    "mosi": {
        "unaligned": MMSAFile(
            "MOSI/Processed/unaligned_50.pkl",
            "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524",
        ),
        "aligned": MMSAFile(
            "MOSI/Processed/aligned_50.pkl",
            "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9",
        ),
    },
    "mosei": {
        "unaligned": MMSAFile(
            "MOSEI/Processed/unaligned_50.pkl",
            "ad8b23d50557045e7d47959ce6c5b955d8d983f2979c7d9b7b9226f6dd6fec1f",
        ),
        "aligned": MMSAFile(
            "MOSEI/Processed/aligned_50.pkl",
            "45eccfb748a87c80ecab9bfac29582e7b1466bf6605ff29d3b338a75120bf791",
        ),
    },
    "sims": {
        "unaligned": MMSAFile(
            "SIMS/Processed/unaligned_39.pkl",
            "c9e20c13ec0454d98bb9c1e520e490c75146bfa2dfeeea78d84de047dbdd442f",
        ),
    },
}
METRIC_FAMILY: Final[dict[str, MetricFamily]] = {"mosi": "mosi", "mosei": "mosi", "sims": "sims"}
UNIMODAL_LABELS: Final[dict[str, str]] = {
    "regression_labels_T": "label_text",
    "regression_labels_A": "label_audio",
    "regression_labels_V": "label_vision",
}


def resolve_data_file(
    dataset: str,
    variant: str = "unaligned",
    data_path: str | Path | None = None,
    data_root: str | Path | None = None,
) -> Path:
    """The file to read: ``data_path``, else ``data_root`` (or ``$MSABENCH_DATA``) + the default path.

    Raises:
        ConfigError: a variant the dataset does not have.
        DatasetNotFoundError: no location given, or no file there (says what to download and its SHA-256).
    """
    files = MMSA_FILES[dataset]
    if variant not in files:
        raise ConfigError(f"{dataset} has no '{variant}' variant: use one of {', '.join(files)}")
    expected = files[variant]
    how = (
        f"get the MMSA processed features ({MMSA_URL}), file {expected.relative_path}, "
        f"SHA-256 {expected.sha256}"
    )
    if data_path is not None:
        path = Path(data_path).expanduser()
    else:
        root = data_root if data_root is not None else os.environ.get(DATA_ENV)
        if not root:
            raise DatasetNotFoundError(
                f"no data location for {dataset}: pass --data-root DIR (the folder holding "
                f"{expected.relative_path}), --data-path FILE or set {DATA_ENV}; {how}"
            )
        path = Path(root).expanduser() / expected.relative_path
    if not path.is_file():
        raise DatasetNotFoundError(f"{dataset} data file not found: tried {path}; {how}")
    return path


def check_published_sha256(dataset: str, path: Path, sha256: str) -> None:
    """Warn when the file is not the published MMSA file of ``dataset`` (never refuses it)."""
    for name, variants in MMSA_FILES.items():
        for variant, published in variants.items():
            if sha256 == published.sha256:
                if name != dataset:
                    warnings.warn(
                        f"{path} is the published {name} {variant} file, but the dataset is {dataset}",
                        DataWarning,
                        stacklevel=2,
                    )
                return
    known = ", ".join(f"{v.relative_path} {v.sha256}" for v in MMSA_FILES[dataset].values())
    warnings.warn(
        f"{path} (SHA-256 {sha256}) is not a published MMSA {dataset} file ({known}); results record this "
        "hash "
        "but may not compare with published numbers",
        DataWarning,
        stacklevel=2,
    )


def load_mmsa(
    path: Path,
    *,
    metric_family: MetricFamily,
    sha256: str | None = None,
    mmap: bool | None = None,
    cache_dir: str | Path | None = None,
) -> LoadedData:
    """Read an MMSA pickle into splits (optionally via the memory-mapped cache).

    Args:
        path: the pickle.
        metric_family: ``mosi`` or ``sims`` (regression on ``regression_labels``) or ``iemocap``
            (classification on ``classification_labels``).
        sha256: the file's SHA-256 if already known.
        mmap: memory-map the splits from a ``.npy`` cache (default: for files of 1 GiB or more).
        cache_dir: cache directory (default :func:`~msabench.datamodules.base.cache_root`).
    """
    sha256 = sha256 or file_sha256(path, cache_dir)
    if mmap is None:
        mmap = path.stat().st_size >= MMAP_THRESHOLD
    splits: dict[str, SplitData] | None = None
    cache = cache_root(cache_dir) / "arrays" / f"mmsa-{sha256[:24]}-{metric_family}-v{CACHE_FORMAT}"
    notes = cache_root(cache_dir) / "load-warnings" / f"{cache.name}.json"
    if mmap:
        splits = load_split_cache(cache)
        if splits is not None:
            # The repairs were made when the cache was written; say them again on every read.
            for message in json.loads(notes.read_text()) if notes.is_file() else []:
                warnings.warn(message, DataWarning, stacklevel=2)
    if splits is None:
        spill = None
        if mmap:
            # Converting: the pickle's large arrays go to files beside the cache, not into RAM.
            cache.parent.mkdir(parents=True, exist_ok=True)
            spill = Path(tempfile.mkdtemp(dir=cache.parent, prefix=f".{cache.name}.spill."))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DataWarning)
                splits = read_mmsa_splits(
                    safe_load(path, spill_dir=spill), source=str(path), metric_family=metric_family
                )
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if mmap:
                found = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
                notes.parent.mkdir(parents=True, exist_ok=True)
                notes.write_text(json.dumps(found))  # before the cache, which marks it complete
                save_split_cache(cache, splits)
                del splits  # the arrays are re-read from the cache; drop the converted copy first
                splits = load_split_cache(cache)
                assert splits is not None  # just written
        finally:
            if spill is not None:
                shutil.rmtree(spill, ignore_errors=True)
    has_ids = "text_ids" in splits["train"]
    return LoadedData(
        splits=splits,
        dims=_dims(splits, metric_family),
        sha256=sha256,
        keep_text_boundaries=has_ids,
        source=str(path),
        variant=data_variant(splits),
        cache_key=cache.name,
    )


def data_variant(splits: Mapping[str, SplitData]) -> Variant:
    """``aligned`` if every modality shares the text's padded length and valid steps in every split.

    That is the layout of MMSA's word-aligned files (no audio/vision lengths: they take the text's); an
    unaligned file has a padded length and valid lengths per modality.
    """
    for columns in splits.values():
        text_valid = np.asarray(columns["text_valid"])
        for m in ("audio", "vision"):
            valid = np.asarray(columns[f"{m}_valid"])
            if valid.shape != text_valid.shape or not np.array_equal(valid, text_valid):
                return "unaligned"
    return "aligned"


def _dims(splits: Mapping[str, SplitData], metric_family: MetricFamily) -> DataDims:
    train = splits["train"]
    classification = metric_family == "iemocap"
    num_classes = None
    if classification:
        num_classes = int(max(int(np.max(s["label"], initial=-1)) for s in splits.values())) + 1
    return DataDims(
        text_len=train["text"].shape[1],
        text_dim=train["text"].shape[2],
        audio_len=train["audio"].shape[1],
        audio_dim=train["audio"].shape[2],
        vision_len=train["vision"].shape[1],
        vision_dim=train["vision"].shape[2],
        has_text_ids="text_ids" in train,
        task="classification" if classification else "regression",
        num_classes=num_classes,
        metric_family=metric_family,
    )


def read_mmsa_splits(obj: Any, *, source: str, metric_family: MetricFamily) -> dict[str, SplitData]:
    """Convert an unpickled MMSA dict into batch-keyed arrays, checking every key and shape.

    Raises:
        DataFormatError: not a dict, a missing split or key, a malformed array, inconsistent shapes, labels
            that are not finite or do not fit ``metric_family``.
    """
    if not isinstance(obj, Mapping):
        raise DataFormatError(
            f"{source} is not an MMSA pickle: expected a dict with keys train/valid/test, found "
            f"{type(obj).__name__}"
        )
    missing = [s for s in SPLITS if s not in obj]
    if missing:
        raise DataFormatError(
            f"{source} is not an MMSA pickle: no '{missing[0]}' split (top-level keys: "
            f"{', '.join(map(str, obj))})"
        )
    splits = {s: _read_split(obj[s], f"{source} [{s}]", metric_family) for s in SPLITS}
    for key, array in splits["train"].items():
        for split in SPLITS[1:]:
            other = splits[split].get(key)
            if other is not None and other.shape[1:] != array.shape[1:]:
                raise DataFormatError(
                    f"{source}: '{key}' is {_shape(array)} in train but {_shape(other)} in {split}; every "
                    "split must share lengths and feature sizes"
                )
    if metric_family == "mosi":
        _warn_if_sims_like(splits, source)
    return splits


# Labels of each regression family: MOSI/MOSEI annotate sentiment in [-3, 3], SIMS in [-1, 1].
LABEL_RANGES: Final[dict[str, tuple[float, float]]] = {"mosi": (-3.0, 3.0), "sims": (-1.0, 1.0)}
FAMILY_DATASETS: Final[dict[str, str]] = {"mosi": "mosi or mosei", "sims": "sims"}
# Float32 labels stored as averages of annotators may sit a rounding error outside the scale.
LABEL_TOLERANCE: Final[float] = 1e-4
# Below this many samples a MOSI file whose labels all lie in [-1, 1] is plausible; above it, unlikely.
SIMS_LIKE_MIN_SAMPLES: Final[int] = 100


def _warn_if_sims_like(splits: Mapping[str, SplitData], source: str) -> None:
    labels = np.concatenate([np.asarray(splits[s]["label"]) for s in SPLITS])
    if len(labels) >= SIMS_LIKE_MIN_SAMPLES and np.abs(labels).max() <= 1 + LABEL_TOLERANCE:
        warnings.warn(
            f"{source}: every label of its {len(labels)} samples lies in [-1, 1], the SIMS scale, but it is "
            "read as MOSI/MOSEI (scale [-3, 3]); if it is a SIMS file, use --dataset sims",
            DataWarning,
            stacklevel=4,
        )


def _shape(array: np.ndarray) -> str:
    return "(N, " + ", ".join(map(str, array.shape[1:])) + ")" if array.ndim > 1 else "(N,)"


def _array(split: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    """``split[key]`` as an ndarray; a ragged nesting of lists or arrays is a one-line error."""
    try:
        return np.asarray(split[key])
    except (ValueError, TypeError) as err:
        raise DataFormatError(
            f"{where}: '{key}' is not a rectangular array ({str(err).splitlines()[0]})"
        ) from None


def _read_split(split: Any, where: str, metric_family: MetricFamily) -> SplitData:
    if not isinstance(split, Mapping):
        raise DataFormatError(f"{where} is a {type(split).__name__}, expected a dict of arrays")
    label_key = "classification_labels" if metric_family == "iemocap" else "regression_labels"
    for key in ("text", "audio", "vision", label_key):
        if key not in split:
            raise DataFormatError(
                f"{where} has no '{key}' (keys: {', '.join(map(str, split))}); an MMSA processed pickle has "
                f"text, audio, vision and {label_key}"
            )
    text = _features(split, "text", where)
    audio = _features(split, "audio", where)
    vision = _features(split, "vision", where)
    n = len(text)

    def check_rows(key: str, array: np.ndarray) -> None:
        if len(array) != n:
            raise DataFormatError(
                f"{where}: '{key}' has shape {array.shape} but 'text' has shape {text.shape}; the first "
                "dimension (samples) must match"
            )

    check_rows("audio", audio)
    check_rows("vision", vision)
    out: SplitData = {}
    if "text_bert" in split:
        ids = _array(split, "text_bert", where)
        if ids.ndim != 3 or ids.shape[1] != 3 or ids.shape[2] != text.shape[1]:
            raise DataFormatError(
                f"{where}: 'text_bert' has shape {ids.shape}, expected (N, 3, {text.shape[1]}) to match "
                f"'text' {text.shape}"
            )
        if ids.dtype.kind not in "fiub":
            raise DataFormatError(f"{where}: 'text_bert' has dtype {ids.dtype}, expected numeric ids")
        check_rows("text_bert", ids)
        if ids.dtype.kind == "f":
            if not np.isfinite(ids).all() or (ids != np.rint(ids)).any():
                raise DataFormatError(f"{where}: 'text_bert' holds non-integer or non-finite ids")
            ids = np.rint(ids)
        ids = ids.astype(np.int64, copy=False)
        if (ids < 0).any():
            raise DataFormatError(f"{where}: 'text_bert' holds negative ids (first row ids, second mask)")
        text_valid = ids[:, 1] != 0
        out["text_ids"] = ids
    elif "text_lengths" in split:
        text_valid = _valid_mask(_lengths(split, "text_lengths", n, text.shape[1], where), text.shape[1])
    else:
        text_valid = np.ones(text.shape[:2], dtype=bool)
    text_length = text_valid.sum(axis=1)
    # Aligned files carry no audio/vision lengths: MMSA uses the text attention-mask length for them.
    audio_len = _lengths(split, "audio_lengths", n, audio.shape[1], where, default=text_length)
    vision_len = _lengths(split, "vision_lengths", n, vision.shape[1], where, default=text_length)
    audio_valid = _valid_mask(audio_len, audio.shape[1])
    vision_valid = _valid_mask(vision_len, vision.shape[1])
    for features, valid in ((text, text_valid), (audio, audio_valid), (vision, vision_valid)):
        _zero_padding(features, valid)
    out.update(
        text=text,
        text_valid=text_valid,
        audio=audio,
        audio_valid=audio_valid,
        vision=vision,
        vision_valid=vision_valid,
    )
    out["label"] = _labels(split, label_key, n, where, metric_family)
    if metric_family == "sims":
        for key, name in UNIMODAL_LABELS.items():
            if key in split:
                out[name] = _labels(split, key, n, where, metric_family)
    return out


def _features(split: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    array = _array(split, key, where)
    if array.ndim != 3 or array.dtype.kind not in "fiub":
        raise DataFormatError(
            f"{where}: '{key}' has shape {array.shape} and dtype {array.dtype}, expected a numeric (N, L, D) "
            "array"
        )
    if 0 in array.shape:
        raise DataFormatError(
            f"{where}: '{key}' has shape {array.shape}; samples, steps and features must be >0"
        )
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, then 0 with the warning
        array = np.asarray(array, dtype=np.float32)
    if not array.flags.writeable:
        array = array.copy()
    # COVAREP audio has -inf for log(0) and MMSA zeroes it silently; anything else deserves a note.
    counts = _zero_non_finite(array, quiet_neginf=key == "audio")
    found = [
        f"{v} {k}"
        for k, v in (("NaN", counts["nan"]), ("+inf", counts["posinf"]), ("-inf", counts["neginf"]))
        if v
    ]
    if found:
        warnings.warn(
            f"{where}: '{key}' had {' and '.join(found)} values (in {counts['samples']} of {len(array)} "
            "samples); replaced by 0",
            DataWarning,
            stacklevel=4,
        )
    return array


def _zero_non_finite(array: np.ndarray, *, quiet_neginf: bool = False, rows: int = 512) -> dict[str, int]:
    """Set non-finite values to 0 in place; count them (``-inf`` not at all with ``quiet_neginf``).

    ``samples`` counts the samples that held a counted value. In row blocks: a whole-array mask of MOSEI's
    text would be another 600 MB.
    """
    counts = {"nan": 0, "posinf": 0, "neginf": 0, "samples": 0}
    for start in range(0, len(array), rows):
        block = array[start : start + rows]
        bad = ~np.isfinite(block)
        if bad.any():
            values = block[bad]
            counts["nan"] += int(np.isnan(values).sum())
            counts["posinf"] += int((values == np.inf).sum())
            counted = bad & (block != -np.inf) if quiet_neginf else bad
            if not quiet_neginf:
                counts["neginf"] += int((values == -np.inf).sum())
            counts["samples"] += int(counted.any(axis=(1, 2)).sum())
            block[bad] = 0.0
    return counts


def _zero_padding(array: np.ndarray, valid: np.ndarray, rows: int = 512) -> None:
    """Set the (N, L, D) ``array`` to 0 wherever ``valid`` (N, L) is False, in place, in row blocks."""
    for start in range(0, len(array), rows):
        block = array[start : start + rows]
        block[~valid[start : start + rows]] = 0.0


def _lengths(
    split: Mapping[str, Any], key: str, n: int, length: int, where: str, default: np.ndarray | None = None
) -> np.ndarray:
    if key not in split:
        return np.minimum(default, length) if default is not None else np.full(n, length, dtype=np.int64)
    values = _array(split, key, where)  # plain lists in some files
    if values.dtype.kind not in "fiub":
        raise DataFormatError(f"{where}: '{key}' has dtype {values.dtype}, expected {n} numeric lengths")
    values = values.astype(np.float64).reshape(-1)
    if len(values) != n:
        raise DataFormatError(f"{where}: '{key}' has {len(values)} entries but the split has {n} samples")
    if not np.isfinite(values).all() or (values < 0).any() or (values != np.rint(values)).any():
        raise DataFormatError(f"{where}: '{key}' has negative, fractional or non-finite entries")
    values = values.astype(np.int64)
    if (values > length).any():
        warnings.warn(
            f"{where}: {int((values > length).sum())} of {n} entries of '{key}' exceed the padded length "
            f"{length} (largest {int(values.max())}); clipped to {length}",
            DataWarning,
            stacklevel=4,
        )
    return np.minimum(values, length)


def _non_finite(values: np.ndarray) -> str:
    nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
    return " and ".join([*([f"{nan} NaN"] if nan else []), *([f"{inf} infinite"] if inf else [])])


def _valid_mask(lengths: np.ndarray, length: int) -> np.ndarray:
    return np.arange(length) < np.asarray(lengths)[:, None]


def _labels(
    split: Mapping[str, Any], key: str, n: int, where: str, metric_family: MetricFamily
) -> np.ndarray:
    values = _array(split, key, where)
    if values.dtype.kind not in "fiub" or values.size != n:
        raise DataFormatError(
            f"{where}: '{key}' has shape {values.shape} and dtype {values.dtype}, expected {n} numeric labels"
        )
    values = values.reshape(n).astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataFormatError(
            f"{where}: '{key}' has {_non_finite(values)} labels (first at sample "
            f"{int(np.flatnonzero(bad)[0])}); labels must be finite"
        )
    if metric_family == "iemocap":
        if (values != np.rint(values)).any() or (values < 0).any():
            raise DataFormatError(f"{where}: '{key}' must hold non-negative integer class indices")
        return values.astype(np.int64)
    low, high = LABEL_RANGES[metric_family]
    found_low, found_high = float(values.min()), float(values.max())
    if found_low < low - LABEL_TOLERANCE or found_high > high + LABEL_TOLERANCE:
        fits = [
            f
            for f, (lo, hi) in LABEL_RANGES.items()
            if found_low >= lo - LABEL_TOLERANCE and found_high <= hi + LABEL_TOLERANCE
        ]
        hint = (
            f"they fit the {fits[0]} family: use --dataset {FAMILY_DATASETS[fits[0]]}"
            if fits
            else "they fit no regression family (MOSI/MOSEI [-3, 3], SIMS [-1, 1])"
        )
        raise DataFormatError(
            f"{where}: '{key}' spans [{found_low:g}, {found_high:g}], outside [{low:g}, {high:g}] of the "
            f"{metric_family} family it is read as ({FAMILY_DATASETS[metric_family]}); {hint}"
        )
    return values.astype(np.float32)


class MMSADataModule(MSADataModule):
    """MOSI, MOSEI or SIMS from an MMSA processed pickle.

    Args:
        name: ``mosi``, ``mosei`` or ``sims``.
        data_path: the pickle (overrides ``data_root``).
        data_root: the folder holding ``MOSI/``, ``MOSEI/``, ``SIMS/`` (default ``$MSABENCH_DATA``).
        variant: ``unaligned`` (default) or ``aligned`` (MOSI/MOSEI).
        mmap: memory-map the splits from a ``.npy`` cache (default: files of 1 GiB or more).
        cache_dir: cache directory (default ``$MSABENCH_CACHE`` or ``~/.cache/msabench``).
        **kwargs: see :class:`~msabench.datamodules.base.MSADataModule`.
    """

    def __init__(
        self,
        name: str,
        *,
        data_path: str | Path | None = None,
        data_root: str | Path | None = None,
        variant: Variant = "unaligned",
        mmap: bool | None = None,
        cache_dir: str | Path | None = None,
        train_policy: TrainingPolicy | None,
        validation: Sequence[Any],
        test: Sequence[Any],
        seed: int,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(
            name,
            train_policy=train_policy,
            validation=validation,
            test=test,
            seed=seed,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )
        if variant not in MMSA_FILES[name]:
            raise ConfigError(f"{name} has no '{variant}' variant: use one of {', '.join(MMSA_FILES[name])}")
        self.data_path = data_path
        self.data_root = data_root
        self.variant = variant
        self.mmap = mmap
        self.cache_dir = cache_dir

    def _load(self) -> LoadedData:
        path = resolve_data_file(self.name, self.variant, self.data_path, self.data_root)
        sha256 = file_sha256(path, self.cache_dir)
        check_published_sha256(self.name, path, sha256)
        data = load_mmsa(
            path,
            metric_family=METRIC_FAMILY[self.name],
            sha256=sha256,
            mmap=self.mmap,
            cache_dir=self.cache_dir,
        )
        if data.variant != self.variant:
            # The rows record what the file holds; say so where the config asked for the other layout.
            warnings.warn(
                f"{path} holds {data.variant} data but {self.name} was asked for the {self.variant} variant "
                f"(data.options.variant); the results record '{data.variant}'",
                DataWarning,
                stacklevel=2,
            )
        return data
