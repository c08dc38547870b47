"""IEMOCAP 4-class in the feature layout of MMIN / IF-MMIN (README, Datasets).

Expected files, under the feature root (``--data-path DIR``, or ``--data-root`` / ``$MSABENCH_DATA`` +
``IEMOCAP``)::

    A/comparE.h5             one dataset per utterance id, (T_a, 130) ComParE frame LLDs
    A/comparE_mean_std.h5    one group per fold ("1".."10") with datasets mean (130,) and std (130,)
    V/denseface.h5           per utterance, (T_v, 342) DenseFace frame features
    L/bert_large.h5          per utterance, (T_l, 1024) BERT-large token features
    target/<fold>/{trn,val,tst}_label.npy     one-hot (N, 4), arg-maxed; 1-D integer labels are used as stored
    target/<fold>/{trn,val,tst}_int2name.npy  utterance ids in label order

Assumptions where the released format is not fully documented (each checked, with an error naming what was
expected):

- the target folder is ``<root>/target``; MMIN keeps ``feature/`` and ``target/`` side by side, so
  ``<root>/../target`` is used when ``<root>/target`` does not exist; ``target_root`` overrides both;
- an ``int2name`` entry is a 1-element array holding a byte string (decoded as UTF-8), a byte string or a
  string; object arrays are read through the restricted unpickler, never ``allow_pickle``;
- an utterance's feature is a 2-D (T, D) dataset; a 1-D (D,) dataset is one frame; T may be 0;
- a zero ``std`` entry is replaced by 1 (a constant feature stays 0 instead of becoming NaN);
- classes are 0 happy (with excited), 1 angry, 2 sad, 3 neutral; ``num_classes`` is the one-hot width (4).

Audio is normalised with the fold's training mean/std (MMIN's ``trn`` method); vision and text are used as
stored. Each modality is padded to the longest sequence of the fold (every split shares one padded length, so
shapes and padding never depend on the batch; MMIN pads per batch). Sequences are stored back to back and
padded per batch (:class:`~msabench.datamodules.base.Ragged`), so memory holds only real frames. The recorded
SHA-256 is that of the list of the fold's files with their own SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np

from msabench.datamodules.base import (
    SPLITS,
    DataDims,
    LoadedData,
    MSADataModule,
    Ragged,
    SplitData,
    file_sha256,
)
from msabench.datamodules.mmsa import DATA_ENV
from msabench.datamodules.mmsa.safe_pickle import load_npy
from msabench.datamodules.registry import get_dataset
from msabench.errors import ConfigError, DataFormatError, DatasetNotFoundError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from msabench.datamodules.base import DataOptions

FEATURE_FILES: Final[dict[str, str]] = {
    "audio": "A/comparE.h5",
    "vision": "V/denseface.h5",
    "text": "L/bert_large.h5",
}
MEAN_STD_FILE: Final[str] = "A/comparE_mean_std.h5"
SPLIT_PREFIX: Final[dict[str, str]] = {"train": "trn", "valid": "val", "test": "tst"}
NUM_FOLDS: Final[int] = 10
DEFAULT_DIR: Final[str] = get_dataset("iemocap").files["unaligned"].relative_path
SOURCE_HINT: Final[str] = (
    "the MMIN/IF-MMIN IEMOCAP features (https://github.com/AIM3-RUC/MMIN): A/comparE.h5, "
    "A/comparE_mean_std.h5, "
    "V/denseface.h5, L/bert_large.h5 and target/<fold>/"
)


def resolve_root(data_path: str | Path | None, data_root: str | Path | None) -> Path:
    """The feature root: ``data_path``, else ``data_root`` (or ``$MSABENCH_DATA``) + ``IEMOCAP``."""
    if data_path is not None:
        root = Path(data_path).expanduser()
    else:
        base = data_root if data_root is not None else os.environ.get(DATA_ENV)
        if not base:
            raise DatasetNotFoundError(
                "no data location for iemocap: pass --data-path DIR (the feature root) or --data-root DIR "
                "(holding "
                f"{DEFAULT_DIR}/), or set {DATA_ENV}; get {SOURCE_HINT}"
            )
        root = Path(base).expanduser() / DEFAULT_DIR
    if not root.is_dir():
        raise DatasetNotFoundError(f"iemocap feature root not found: tried {root}; get {SOURCE_HINT}")
    return root


def resolve_target(root: Path, target_root: str | Path | None) -> Path:
    """The target folder holding ``<fold>/`` label and id files."""
    if target_root is not None:
        candidates = [Path(target_root).expanduser()]
    else:
        candidates = [root / "target", root.parent / "target"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = " and ".join(str(c) for c in candidates)
    raise DatasetNotFoundError(f"iemocap target folder not found: tried {tried}; get {SOURCE_HINT}")


def decode_names(names: np.ndarray, source: Path) -> list[str]:
    """Utterance ids from an ``int2name`` array (1-element arrays of bytes, bytes or str)."""
    flat = names.reshape(len(names), -1)[:, 0] if names.dtype != object else names.reshape(-1)
    out = []
    for entry in flat:  # a few thousand ids, read once
        while isinstance(entry, np.ndarray):
            if entry.size != 1:
                raise DataFormatError(f"{source}: an id entry has shape {entry.shape}, expected one string")
            entry = entry.reshape(-1)[0]
        if isinstance(entry, bytes | np.bytes_):
            entry = bytes(entry).decode("utf-8")
        if not isinstance(entry, str | np.str_):
            raise DataFormatError(
                f"{source}: an id entry is a {type(entry).__name__}, expected a (byte) string"
            )
        out.append(str(entry))
    return out


def read_labels(path: Path) -> tuple[np.ndarray, int | None]:
    """Class indices from a label file; also the one-hot width when the file is one-hot."""
    labels = load_npy(path)
    if labels.ndim == 2:
        if labels.shape[1] < 2:
            raise DataFormatError(f"{path} has shape {labels.shape}, expected one-hot (N, classes) or (N,)")
        return np.argmax(labels, axis=1).astype(np.int64), int(labels.shape[1])
    if (
        labels.ndim != 1
        or labels.dtype.kind not in "iuf"
        or (labels != np.rint(labels)).any()
        or (labels < 0).any()
    ):
        raise DataFormatError(
            f"{path} has shape {labels.shape} and dtype {labels.dtype}, expected class indices"
        )
    return labels.astype(np.int64), None


def _read_sequences(handle: Any, names: list[str], source: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name in names:  # one h5 dataset per utterance: the layout itself is per sample
        if name not in handle:
            raise DataFormatError(f"{source} has no utterance '{name}' (listed in the fold's int2name)")
        value = np.asarray(handle[name][()], dtype=np.float32)
        if value.ndim == 1:
            value = value[None]
        if value.ndim != 2:
            raise DataFormatError(f"{source}: '{name}' has shape {value.shape}, expected (frames, features)")
        arrays.append(value)
    dims = {a.shape[1] for a in arrays}
    if len(dims) > 1:
        raise DataFormatError(f"{source}: utterances have different feature sizes {sorted(dims)}")
    lengths = np.asarray([len(a) for a in arrays], dtype=np.int64)
    values = np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
    return values, lengths


def load_iemocap(root: Path, target: Path, fold: int, cache_dir: str | Path | None = None) -> LoadedData:
    """Read one fold of the MMIN IEMOCAP layout (see the module docstring)."""
    import h5py

    files = {m: root / rel for m, rel in FEATURE_FILES.items()}
    files["mean_std"] = root / MEAN_STD_FILE
    fold_dir = target / str(fold)
    for split in SPLITS:
        for kind in ("label", "int2name"):
            files[f"{split}_{kind}"] = fold_dir / f"{SPLIT_PREFIX[split]}_{kind}.npy"
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(f"iemocap fold {fold}: missing {', '.join(missing)}; get {SOURCE_HINT}")

    with h5py.File(files["mean_std"], "r") as handle:
        if str(fold) not in handle:
            raise DataFormatError(f"{files['mean_std']} has no group '{fold}' (groups: {', '.join(handle)})")
        mean = np.asarray(handle[str(fold)]["mean"][()], dtype=np.float32).reshape(-1)
        std = np.asarray(handle[str(fold)]["std"][()], dtype=np.float32).reshape(-1)
    std = np.where(std == 0, np.float32(1), std)

    names, labels, widths = {}, {}, set()
    for split in SPLITS:
        names[split] = decode_names(load_npy(files[f"{split}_int2name"]), files[f"{split}_int2name"])
        labels[split], width = read_labels(files[f"{split}_label"])
        widths.add(width)
        if len(labels[split]) != len(names[split]):
            raise DataFormatError(
                f"iemocap fold {fold} {split}: {len(labels[split])} labels but {len(names[split])} ids"
            )
    sequences: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {split: {} for split in SPLITS}
    for modality in FEATURE_FILES:
        with h5py.File(files[modality], "r") as handle:
            for split in SPLITS:
                values, lengths = _read_sequences(handle, names[split], files[modality])
                if modality == "audio":
                    if values.shape[1] != len(mean) or len(std) != len(mean):
                        raise DataFormatError(
                            f"{files['mean_std']}: fold {fold} mean/std have {len(mean)}/{len(std)} entries "
                            "but "
                            f"the audio features have {values.shape[1]}"
                        )
                    values = (values - mean) / std
                sequences[split][modality] = (values, lengths)

    splits: dict[str, SplitData] = {}
    padded = {m: max(int(sequences[s][m][1].max(initial=0)) for s in SPLITS) for m in FEATURE_FILES}
    for split in SPLITS:
        columns: SplitData = {}
        for modality in ("text", "audio", "vision"):
            values, lengths = sequences[split][modality]
            columns[modality] = Ragged(values, lengths, padded[modality])
            columns[f"{modality}_valid"] = np.arange(padded[modality]) < lengths[:, None]
        columns["label"] = labels[split]
        splits[split] = columns

    one_hot = {w for w in widths if w is not None}
    num_classes = (
        one_hot.pop()
        if len(one_hot) == 1
        else int(max(cast(np.ndarray, s["label"]).max(initial=0) for s in splits.values())) + 1
    )
    feature_dim = {m: sequences["train"][m][0].shape[1] for m in FEATURE_FILES}
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(f"{key}:{file_sha256(files[key], cache_dir)}\n".encode())
    dims = DataDims(
        text_len=padded["text"],
        text_dim=feature_dim["text"],
        audio_len=padded["audio"],
        audio_dim=feature_dim["audio"],
        vision_len=padded["vision"],
        vision_dim=feature_dim["vision"],
        has_text_ids=False,
        task="classification",
        num_classes=num_classes,
        metric_family="iemocap",
    )
    return LoadedData(
        splits=splits, dims=dims, sha256=digest.hexdigest(), keep_text_boundaries=False, source=str(root)
    )


class IEMOCAPDataModule(MSADataModule):
    """IEMOCAP 4-class, one fold of the MMIN/IF-MMIN features.

    Args:
        name: ``iemocap``.
        fold: the cross-validation fold, 1 to 10.
        target_root: the folder holding ``<fold>/`` label files (default ``<root>/target`` or
            ``<root>/../target``).
        **options: see :class:`~msabench.datamodules.base.MSADataModule`; ``data_path`` is the feature root
            (holding ``A/``, ``V/``, ``L/``), ``data_root`` the folder holding ``IEMOCAP/``.
    """

    keep_text_boundaries = False

    def __init__(
        self,
        name: str = "iemocap",
        *,
        fold: int = 1,
        target_root: str | Path | None = None,
        **options: Unpack[DataOptions],
    ) -> None:
        super().__init__(name, **options)
        given = fold
        try:
            fold = int(fold)
        except (TypeError, ValueError):
            fold = 0
        if not 1 <= fold <= NUM_FOLDS:
            raise ConfigError(f"iemocap fold must be an integer from 1 to {NUM_FOLDS}, got {given!r}")
        self.fold = fold
        self.target_root = target_root

    def _load(self) -> LoadedData:
        root = resolve_root(self.data_path, self.data_root)
        return load_iemocap(root, resolve_target(root, self.target_root), self.fold, self.cache_dir)
