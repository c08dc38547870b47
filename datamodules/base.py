"""The datamodule base: splits as contiguous arrays, batched indexing, protocols applied on the device.

A concrete dataset only loads its splits into :class:`LoadedData` (``_load``); everything else lives here:

- each split is a dict of arrays keyed like the batch (``text``, ``text_valid``, ..., ``label``), float32
  features, bool padding masks, in RAM or memory-mapped from a ``.npy`` cache;
- a batch is one fancy-indexing call per key (:class:`ArrayDataset` takes the whole index list), so collation
  has no Python loop over samples; padding is never trimmed (some methods average over the full padded
  length);
- training batches are shuffled by a permutation keyed by (seed, epoch); validation and test never are;
- ``on_after_batch_transfer`` applies the training policy or the evaluation setting on the device, to whole
  batches.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import lightning
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

if TYPE_CHECKING:
    from msabench.datamodules.batch import Batch
    from msabench.protocols.settings import Setting

SPLITS: Final[tuple[str, str, str]] = ("train", "valid", "test")
Task = Literal["regression", "classification"]
MetricFamily = Literal["mosi", "sims", "iemocap"]
CACHE_ENV: Final[str] = "MSABENCH_CACHE"


@dataclass(frozen=True)
class DataDims:
    """Shapes and task of a dataset, read from the data (never from config).

    Attributes:
        text_len: padded text length L_t.
        text_dim: text feature size D_t.
        audio_len: padded audio length L_a.
        audio_dim: audio feature size D_a.
        vision_len: padded vision length L_v.
        vision_dim: vision feature size D_v.
        has_text_ids: batches carry ``text_ids`` (BERT id triplets).
        task: ``regression`` (MOSI/MOSEI/SIMS) or ``classification`` (IEMOCAP).
        num_classes: number of classes for classification, None for regression.
        metric_family: which metric set applies: ``mosi`` (MOSI/MOSEI), ``sims`` or ``iemocap``.
    """

    text_len: int
    text_dim: int
    audio_len: int
    audio_dim: int
    vision_len: int
    vision_dim: int
    has_text_ids: bool
    task: Task
    num_classes: int | None
    metric_family: MetricFamily


class Ragged:
    """Variable-length sequences stored back to back, read as zero-padded (N, length, D) batches.

    Used where padding every sample to the longest one would multiply memory (IEMOCAP frame features).

    Args:
        values: (total steps, D) the sequences concatenated.
        lengths: (N,) the length of each sequence.
        length: the padded length of every batch (at least the longest sequence).
    """

    def __init__(self, values: np.ndarray, lengths: np.ndarray, length: int) -> None:
        self.values = values
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.length = int(length)
        if self.offsets[-1] != len(values) or (self.lengths.size and self.lengths.max() > self.length):
            raise ValueError("ragged lengths do not match the stored values or exceed the padded length")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the padded array this stands for."""
        return (len(self.lengths), self.length, self.values.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the values."""
        return self.values.dtype

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index, dtype=np.int64)
        steps = np.arange(self.length)
        valid = steps < self.lengths[index][..., None]
        # Gather every (sample, step) at once; padding positions read a clamped in-range row and are zeroed
        # after.
        rows = np.minimum(self.offsets[index][..., None] + steps, max(len(self.values) - 1, 0))
        if len(self.values) == 0:
            return np.zeros((*index.shape, self.length, self.values.shape[1]), self.values.dtype)
        out = self.values[rows]
        out[~valid] = 0
        return out


Column = np.ndarray | Ragged
SplitData = dict[str, Column]


@dataclass
class LoadedData:
    """What a concrete dataset hands to the base: the splits and what was read from them.

    Attributes:
        splits: per split (``train``/``valid``/``test``), arrays keyed like the batch (without ``index``).
        dims: shapes and task.
        sha256: SHA-256 of the file read (None where the data comes from several files).
        keep_text_boundaries: the text has [CLS]/[SEP] at its first/last valid position (protocols keep them).
        source: where the data came from (a path), for messages.
        text_contextual: the stored text features were computed over the whole sentence (BERT states), so a
            dropped token's neighbours still encode it; token drops then need the text re-encoded.
        text_encoder: a local directory holding the encoder the stored text was made with, when the data
            ships one (the synthetic datasets do); None otherwise.
    """

    splits: dict[str, SplitData]
    dims: DataDims
    sha256: str | None
    keep_text_boundaries: bool
    source: str = ""
    text_contextual: bool = True
    text_encoder: str | None = None


class ArrayDataset(Dataset):
    """A split as a dataset whose ``__getitem__`` takes a whole list of indices and returns a batch.

    An int index returns one sample without the batch dimension (for inspection); a sequence returns the
    batch. Memory-mapped columns are reopened in worker processes instead of being copied into them.
    """

    def __init__(self, columns: SplitData) -> None:
        lengths = {len(col) for col in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"columns of one split differ in length: {sorted(lengths)}")
        self.columns = columns
        self._len = lengths.pop()

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int | Sequence[int] | np.ndarray) -> Batch:
        if isinstance(index, int | np.integer):
            batch = self.__getitems__([int(index)])
            return {key: value[0] for key, value in batch.items()}  # type: ignore[return-value]
        return self.__getitems__(index)

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Batch of the samples at ``indices`` (one fancy-indexing call per key)."""
        idx = np.asarray(indices, dtype=np.int64)
        batch: dict[str, torch.Tensor] = {
            key: torch.from_numpy(np.ascontiguousarray(np.asarray(col[idx])))
            for key, col in self.columns.items()
        }
        batch["index"] = torch.from_numpy(idx.copy())
        return batch  # type: ignore[return-value]

    def __getstate__(self) -> dict[str, Any]:
        # A memory-mapped array would be pickled by value into each worker; send its path instead.
        columns = {
            key: ("__memmap__", col.filename) if isinstance(col, np.memmap) else col
            for key, col in self.columns.items()
        }
        return {"columns": columns, "_len": self._len}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._len = state["_len"]
        self.columns = {
            key: np.load(col[1], mmap_mode="r") if isinstance(col, tuple) and col[0] == "__memmap__" else col
            for key, col in state["columns"].items()
        }


class IndexBatchSampler(Sampler[list[int]]):
    """Yields lists of indices; shuffled training order is a pure function of (seed, epoch).

    Lightning calls :meth:`set_epoch` before every epoch; without it (plain iteration) the epoch advances
    after each complete pass, so repeated passes still differ. Evaluation samplers keep the stored order.

    Args:
        size: number of samples.
        batch_size: samples per batch (the last batch may be smaller: drop_last is False).
        shuffle: shuffle per epoch.
        seed: seed of the shuffle.
    """

    def __init__(self, size: int, batch_size: int, *, shuffle: bool, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.size = size
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(_mix_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        for start in range(0, self.size, self.batch_size):
            yield order[start : start + self.batch_size]
        self.epoch += 1


def _mix_seed(seed: int, epoch: int) -> int:
    # A different stream per (seed, epoch) that does not collide for nearby pairs, as seed + epoch would.
    return int(np.random.SeedSequence([seed % 2**63, epoch]).generate_state(1, np.uint64)[0] >> 1)


class TrainingPolicy(Protocol):
    """What the datamodule needs of a training policy (``msabench.protocols.TrainingPolicy``)."""

    def apply(
        self, batch: Batch, *, seed: int, epoch: int, split_size: int, keep_text_boundaries: bool
    ) -> Batch:
        """Return the training view of ``batch`` (missing view, masks and the complete view)."""
        ...


class MSADataModule(lightning.LightningDataModule):
    """Base of every dataset; subclasses implement :meth:`_load` only.

    Args:
        name: the dataset name (as in ``DATASETS``).
        train_policy: how missingness is drawn for training batches.
        validation: one setting per validation dataloader (the first one is the selection monitor's).
        test: one setting per test dataloader.
        seed: the run seed: training shuffle and the training policy's masks.
        batch_size: training batch size.
        eval_batch_size: validation/test batch size (default: ``batch_size``).
        num_workers: dataloader worker processes (batching is one indexing call, so 0 is usually fastest).
        pin_memory: pin host memory (default: when CUDA is available).
    """

    keep_text_boundaries: bool = True

    def __init__(
        self,
        name: str,
        *,
        train_policy: TrainingPolicy | None,
        validation: Sequence[Setting],
        test: Sequence[Setting],
        seed: int,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.train_policy = train_policy
        self.validation = list(validation)
        self.test = list(test)
        self.seed = seed
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self._data: LoadedData | None = None
        self._datasets: dict[str, ArrayDataset] = {}

    def _load(self) -> LoadedData:
        """Read (or generate) the data; called once by :meth:`setup`."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Load the data once; later calls do nothing."""
        if self._data is not None:
            return
        data = self._load()
        self._data = data
        self.keep_text_boundaries = data.keep_text_boundaries
        self._datasets = {split: ArrayDataset(data.splits[split]) for split in SPLITS}

    @property
    def data(self) -> LoadedData:
        """The loaded data (after :meth:`setup`)."""
        if self._data is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not been called yet")
        return self._data

    def dataset(self, split: str) -> ArrayDataset:
        """The dataset of one split (after :meth:`setup`)."""
        if self._data is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not been called yet")
        return self._datasets[split]

    @property
    def dims(self) -> DataDims:
        """Shapes and task, read from the data (after :meth:`setup`)."""
        return self.data.dims

    @property
    def sha256(self) -> str | None:
        """SHA-256 of the data file actually read (after :meth:`setup`)."""
        return self.data.sha256

    @property
    def split_sizes(self) -> dict[str, int]:
        """Number of samples per split (after :meth:`setup`)."""
        return {split: len(self.dataset(split)) for split in SPLITS}

    def _loader(self, split: str, batch_size: int, *, shuffle: bool) -> DataLoader:
        dataset = self.dataset(split)
        sampler = IndexBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=self.seed)
        # batch_size=None: the sampler yields whole index lists and the dataset returns whole batches.
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (order keyed by seed and epoch)."""
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> list[DataLoader]:
        """One unshuffled loader per validation setting."""
        return [self._loader("valid", self.eval_batch_size, shuffle=False) for _ in self.validation]

    def test_dataloader(self) -> list[DataLoader]:
        """One unshuffled loader per test setting."""
        return [self._loader("test", self.eval_batch_size, shuffle=False) for _ in self.test]

    def predict_dataloader(self) -> list[DataLoader]:
        """Same as :meth:`test_dataloader`."""
        return self.test_dataloader()

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """Apply the training policy or the evaluation setting to the batch, on its device."""
        trainer = self.trainer
        if trainer is None:
            return batch
        from msabench.protocols import apply_setting

        if trainer.training:
            if self.train_policy is None:
                raise RuntimeError("this datamodule was built without a training policy")
            return self.train_policy.apply(
                batch,
                seed=self.seed,
                epoch=trainer.current_epoch,
                split_size=self.split_sizes["train"],
                keep_text_boundaries=self.keep_text_boundaries,
            )
        if trainer.validating or trainer.sanity_checking:
            setting, split = self.validation[dataloader_idx], "valid"
        elif trainer.testing or trainer.predicting:
            setting, split = self.test[dataloader_idx], "test"
        else:
            return batch
        missing = apply_setting(
            batch,
            setting,
            split=split,
            split_size=self.split_sizes[split],
            keep_text_boundaries=self.keep_text_boundaries,
        )
        if split == "valid" and getattr(self, "validation_complete_view", False):
            # A method whose selection loss needs the complete view (MITR-DNet) gets it on validation only;
            # the base passes only the missing view to forward. Test batches never carry it.
            for key in ("text", "audio", "vision", "text_ids"):
                if key in batch:
                    missing[f"{key}_full"] = batch[key]  # type: ignore[literal-required]
            for m in ("text", "audio", "vision"):
                # The complete padding mask: an absent modality has no positions in the missing view's.
                missing[f"{m}_valid_full"] = batch[f"{m}_valid"]  # type: ignore[literal-required]
        return missing


# ---------------------------------------------------------------------------------------------------------
# Cache: file hashes and memory-mapped splits


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The cache directory: ``cache_dir``, else ``$MSABENCH_CACHE``, else ``~/.cache/msabench``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "msabench"


def file_sha256(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """SHA-256 of a file, streamed; remembered per (path, size, mtime) so multi-GB files are hashed once.

    Args:
        path: the file.
        cache_dir: where the remembered digests live (see :func:`cache_root`); the memo is skipped if
            unwritable.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_path = cache_root(cache_dir) / "sha256.json"
    memo: dict[str, str] = {}
    try:
        memo = json.loads(memo_path.read_text())
        if key in memo:
            return memo[key]
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    value = digest.hexdigest()
    if stat.st_size >= 1 << 26:  # only worth remembering for large files
        memo[key] = value
        try:
            _atomic_write_text(memo_path, json.dumps(memo, indent=0))
        except OSError:
            pass
    return value


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def save_split_cache(directory: Path, splits: Mapping[str, SplitData]) -> None:
    """Write dense splits as ``<split>.<key>.npy`` files, atomically (never visible half-written)."""
    if directory.exists():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        for split, columns in splits.items():
            for key, col in columns.items():
                np.save(staging / f"{split}.{key}.npy", np.asarray(col), allow_pickle=False)
        (staging / "complete").write_text(json.dumps({s: sorted(c) for s, c in splits.items()}))
        os.replace(staging, directory)
    except OSError:
        if not directory.exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # another process finished first


def load_split_cache(directory: Path) -> dict[str, SplitData] | None:
    """Memory-map a cache written by :func:`save_split_cache`; None if there is none."""
    marker = directory / "complete"
    if not marker.is_file():
        return None
    keys = json.loads(marker.read_text())
    return {
        split: {key: np.load(directory / f"{split}.{key}.npy", mmap_mode="r") for key in split_keys}
        for split, split_keys in keys.items()
    }
