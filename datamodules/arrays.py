"""The data as arrays: splits, their containers, and batches made by one indexing call per key.

- each split is a dict of arrays keyed like the batch (``text``, ``text_valid``, ..., ``label``), float32
  features, bool padding masks, in RAM or memory-mapped from a ``.npy`` cache (:class:`Ragged` stores
  variable-length sequences back to back);
- a batch is one fancy-indexing call per key (:class:`ArrayDataset` takes the whole index list), so collation
  has no Python loop over samples; padding is never trimmed (some methods average over the full padded
  length);
- training batches are shuffled by a permutation keyed by (seed, epoch) (:class:`IndexBatchSampler`);
  validation and test never are.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from msabench.core.vocabulary import MetricFamily

if TYPE_CHECKING:
    from msabench.core.batch import Batch

Task = Literal["regression", "classification"]


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
        variant: ``aligned`` (every modality on the words' timeline, MMSA's ``aligned_50.pkl``) or
            ``unaligned`` (each modality at its own rate), as read from the data.
        cache_key: names the data in the cache directory (file hash and format); None if it has none.
    """

    splits: dict[str, SplitData]
    dims: DataDims
    sha256: str | None
    keep_text_boundaries: bool
    source: str = ""
    text_contextual: bool = True
    text_encoder: str | None = None
    variant: str = "unaligned"
    cache_key: str | None = None


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
            batch = cast(dict[str, torch.Tensor], self.__getitems__([int(index)]))
            return cast("Batch", {key: value[0] for key, value in batch.items()})
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
