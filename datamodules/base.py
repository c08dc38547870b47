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

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import lightning
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from msabench.core.vocabulary import MODALITIES, SPLITS, MetricFamily
from msabench.datamodules.cache import (  # noqa: F401  (re-exported: the datasets import them from here)
    CACHE_ENV,
    cache_root,
    file_sha256,
    load_split_cache,
    save_split_cache,
)
from msabench.datamodules.normalize import Normalization, check_normalization, normalize_data, variant_suffix
from msabench.datamodules.text_view import (
    TextReencoder,
    TextViewName,
    encode_complete_text,
    resolve_text_view,
)
from msabench.protocols import apply_setting

if TYPE_CHECKING:
    from msabench.core.batch import Batch
    from msabench.protocols.settings import Setting

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

    @property
    def drops_tokens(self) -> bool:
        """Whether training batches lose some tokens of a present text."""
        ...

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
        self.normalization: Normalization = "none"
        self._text_view_request = "auto"
        self._bert_path: str | None = None
        self.text_view: TextViewName | None = None
        self.reencoder: TextReencoder | None = None
        self._eval_text: dict[tuple[str, Setting], Tensor] = {}

    def use_text_view(self, requested: str = "auto", bert_path: str | Path | None = None) -> None:
        """Choose how contextual text is treated when tokens are dropped (before :meth:`setup`).

        Args:
            requested: ``auto`` (re-encode when an encoder is known, refuse token drops otherwise),
                ``reencoded`` or ``stored`` (keep the stored features: leaks the dropped words).
            bert_path: a local directory with the encoder the stored text was made with; by default the one
                the data ships (synthetic data), if any.
        """
        self._text_view_request = requested
        self._bert_path = None if bert_path in (None, "") else str(bert_path)

    def use_normalization(self, normalization: str = "none") -> None:
        """Choose the feature normalisation (before :meth:`setup`): ``none`` or ``train_zscore``.

        Raises:
            ConfigError: an unknown name.
        """
        self.normalization = check_normalization(normalization)

    def _load(self) -> LoadedData:
        """Read (or generate) the data; called once by :meth:`setup`."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """Load the data once; later calls do nothing."""
        if self._data is not None:
            return
        data = normalize_data(self._load(), self.normalization, getattr(self, "cache_dir", None))
        self.keep_text_boundaries = data.keep_text_boundaries
        self._choose_text_view(data)
        self._data = data
        self._datasets = {split: ArrayDataset(data.splits[split]) for split in SPLITS}

    def _choose_text_view(self, data: LoadedData) -> None:
        encoder_path = self._bert_path or data.text_encoder
        settings = [*self.validation, *self.test]
        drops = any(s.drops_tokens for s in settings)
        if self.train_policy is not None:
            drops = drops or self.train_policy.drops_tokens
        self.text_view = resolve_text_view(
            self._text_view_request,
            dataset=self.name,
            contextual=data.text_contextual,
            has_ids=data.dims.has_text_ids,
            encoder_path=encoder_path,
            drops_tokens=drops,
        )
        if self.text_view != "reencoded":
            return
        assert encoder_path is not None
        self.reencoder = TextReencoder(encoder_path)
        shipped = data.text_encoder is not None
        if not shipped or Path(data.text_encoder).resolve() != Path(encoder_path).resolve():  # type: ignore[arg-type]
            # Stored features from elsewhere: every view must come from this encoder.
            encode_complete_text(data, self.reencoder, getattr(self, "cache_dir", None))

    @property
    def text_encoder_fingerprint(self) -> str | None:
        """SHA-256 of the encoder that re-encodes the text (None unless the text view is ``reencoded``)."""
        return self.reencoder.fingerprint if self.reencoder is not None else None

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
    def data_variant(self) -> str:
        """The data as read, for result rows and the run key (after :meth:`setup`).

        ``aligned`` or ``unaligned``, followed by ``+zscore`` when audio and vision were normalised with the
        training split's statistics (``data.normalize=train_zscore``).
        """
        return self.data.variant + variant_suffix(self.normalization)

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
        if trainer.training:
            if self.train_policy is None:
                raise RuntimeError("this datamodule was built without a training policy")
            out = self.train_policy.apply(
                batch,
                seed=self.seed,
                epoch=trainer.current_epoch,
                split_size=self.split_sizes["train"],
                keep_text_boundaries=self.keep_text_boundaries,
            )
            return self.reencode(out) if self.train_policy.drops_tokens else out
        if trainer.validating or trainer.sanity_checking:
            setting, split = self.validation[dataloader_idx], "valid"
        elif trainer.testing or trainer.predicting:
            setting, split = self.test[dataloader_idx], "test"
        else:
            return batch
        missing = self.missing_view(batch, setting, split, cached=True)
        if split == "valid" and getattr(self, "validation_complete_view", False):
            # A method whose selection loss needs the complete view (MITR-DNet) gets it on validation only;
            # the base passes only the missing view to forward. Test batches never carry it.
            for key in (*MODALITIES, "text_ids"):
                if key in batch:
                    missing[f"{key}_full"] = batch[key]  # type: ignore[literal-required]
            for m in MODALITIES:
                missing[f"{m}_valid_full"] = batch[f"{m}_valid"]  # type: ignore[literal-required]
        return missing

    def missing_view(self, batch: Batch, setting: Setting, split: str, *, cached: bool = False) -> Batch:
        """The missing view of a complete batch under an evaluation setting, text view included.

        Args:
            batch: the complete batch, on its device.
            setting: the protocol point and mask seed.
            split: ``valid`` or ``test`` (part of the mask key).
            cached: take re-encoded text from the whole-split view computed once per (split, setting), as the
                loaders do; False re-encodes this batch (what the cache holds, computed directly).
        """
        missing = apply_setting(
            batch,
            setting,
            split=split,
            split_size=self.split_sizes[split],
            keep_text_boundaries=self.keep_text_boundaries,
        )
        if self.text_view != "reencoded" or not setting.drops_tokens:
            return missing
        if not cached:
            return self.reencode(missing)
        view = self._split_text(split, setting, missing["text"].device)
        missing["text"] = view[missing["index"].to(view.device)]
        return missing

    def reencode(self, missing: Batch) -> Batch:
        """Recompute the text of a missing view from its [UNK]-substituted ids; dropped positions stay 0."""
        if self.text_view != "reencoded":
            return missing
        assert self.reencoder is not None
        encoded = self.reencoder.encode(missing["text_ids"])
        missing["text"] = torch.where(missing["text_keep"][..., None], encoded, 0)
        return missing

    def _split_text(self, split: str, setting: Setting, device: torch.device) -> Tensor:
        """The re-encoded missing-view text of a whole split under a fixed setting, made once and reused.

        Validation views live for the run (every epoch reads them); a test view is dropped when the next test
        setting starts, so memory holds at most one of them.
        """
        key = (split, setting)
        if key not in self._eval_text:
            if split == "test":
                self._eval_text = {k: v for k, v in self._eval_text.items() if k[0] != "test"}
            dataset = self.dataset(split)
            parts = []
            for start in range(0, len(dataset), self.eval_batch_size):
                rows = np.arange(start, min(start + self.eval_batch_size, len(dataset)))
                complete = {k: v.to(device) for k, v in dataset[rows].items()}
                parts.append(self.missing_view(complete, setting, split)["text"])  # type: ignore[arg-type]
            self._eval_text[key] = torch.cat(parts)
        return self._eval_text[key]
