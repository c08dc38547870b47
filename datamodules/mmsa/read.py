"""Reading an MMSA pickle's splits: shapes checked, quirks handled, padding zeroed (used by ``mmsa``).

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
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Final, Literal, cast

import numpy as np

from msabench.core.vocabulary import SPLITS, MetricFamily
from msabench.datamodules.arrays import DataDims, Ragged, SplitData
from msabench.errors import DataFormatError, DataWarning

Variant = Literal["unaligned", "aligned"]
UNIMODAL_LABELS: Final[dict[str, str]] = {
    "regression_labels_T": "label_text",
    "regression_labels_A": "label_audio",
    "regression_labels_V": "label_vision",
}


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


def data_dims(splits: Mapping[str, SplitData], metric_family: MetricFamily) -> DataDims:
    """Shapes and task of read splits (every dimension from the data)."""
    train = splits["train"]
    classification = metric_family == "iemocap"
    num_classes = None
    if classification:
        num_classes = (
            int(max(int(np.max(cast(np.ndarray, s["label"]), initial=-1)) for s in splits.values())) + 1
        )
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
    splits: dict[str, SplitData] = {s: _read_split(obj[s], f"{source} [{s}]", metric_family) for s in SPLITS}
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


def _shape(array: np.ndarray | Ragged) -> str:
    return "(N, " + ", ".join(map(str, array.shape[1:])) + ")" if len(array.shape) > 1 else "(N,)"


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
