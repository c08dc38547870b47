"""The datamodule base: a dataset's splits served as batches, protocols applied on the device.

A concrete dataset only loads its splits into :class:`~msabench.datamodules.arrays.LoadedData` (``_load``) and
declares its own options; the options every dataset shares (:class:`DataOptions`) are taken here once.
Everything else lives here or in :mod:`~msabench.datamodules.arrays` (the arrays, batches by one indexing
call, the seeded shuffle): ``on_after_batch_transfer`` applies the training policy or the evaluation setting
on the device, to whole batches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict, cast

import lightning
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from msabench.core.vocabulary import MODALITIES, SPLITS, MetricFamily  # noqa: F401  (re-exported)
from msabench.datamodules.arrays import (  # noqa: F401  (re-exported: the base's names before the split)
    ArrayDataset,
    Column,
    DataDims,
    IndexBatchSampler,
    LoadedData,
    Ragged,
    SplitData,
    Task,
)
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

LOG = logging.getLogger(__name__)  # progress messages (the command line prints them)

if TYPE_CHECKING:
    from typing_extensions import NotRequired

    from msabench.core.batch import Batch
    from msabench.protocols.settings import Setting


class TrainingPolicy(Protocol):
    """What the datamodule needs of a training policy (``msabench.protocols.TrainingPolicy``)."""

    @property
    def drops_tokens(self) -> bool:
        """Whether training batches lose some tokens of a present text."""
        ...

    @property
    def fixed_setting(self) -> Setting | None:
        """The evaluation setting whose training-split masks the policy applies every epoch, if any."""
        ...

    def apply(
        self, batch: Batch, *, seed: int, epoch: int, split_size: int, keep_text_boundaries: bool
    ) -> Batch:
        """Return the training view of ``batch`` (missing view, masks and the complete view)."""
        ...


class DataOptions(TypedDict):
    """The options every dataset takes, passed through a concrete datamodule to :class:`MSADataModule`.

    A concrete datamodule's signature is its own options followed by ``**options: Unpack[DataOptions]``.
    """

    train_policy: TrainingPolicy | None
    validation: Sequence[Setting]
    test: Sequence[Setting]
    seed: int
    batch_size: NotRequired[int]
    eval_batch_size: NotRequired[int | None]
    num_workers: NotRequired[int]
    pin_memory: NotRequired[bool | None]
    data_path: NotRequired[str | Path | None]
    data_root: NotRequired[str | Path | None]
    cache_dir: NotRequired[str | Path | None]


class MSADataModule(lightning.LightningDataModule):
    """Base of every dataset; subclasses implement :meth:`_load` and take their own options only.

    Args:
        name: the dataset name (as registered, see :mod:`~msabench.datamodules.registry`).
        train_policy: how missingness is drawn for training batches.
        validation: one setting per validation dataloader (the first one is the selection monitor's).
        test: one setting per test dataloader.
        seed: the run seed: training shuffle and the training policy's masks.
        batch_size: training batch size.
        eval_batch_size: validation/test batch size (default: ``batch_size``).
        num_workers: dataloader worker processes (batching is one indexing call, so 0 is usually fastest).
        pin_memory: pin host memory (default: when CUDA is available).
        data_path: the data file or folder to read (each dataset says which; overrides ``data_root``).
        data_root: the folder holding the datasets (default ``$MSABENCH_DATA``).
        cache_dir: cache directory (default ``$MSABENCH_CACHE`` or ``~/.cache/msabench``).
    """

    name: str  # always given (Lightning's base declares it optional)

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
        data_path: str | Path | None = None,
        data_root: str | Path | None = None,
        cache_dir: str | Path | None = None,
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
        self.data_path = data_path
        self.data_root = data_root
        self.cache_dir = cache_dir
        self._data: LoadedData | None = None
        self._datasets: dict[str, ArrayDataset] = {}
        self.normalization: Normalization = "none"
        self._text_view_request = "auto"
        self._bert_path: str | None = None
        self.text_view: TextViewName | None = None
        self.reencoder: TextReencoder | None = None
        # Whether the re-encoder is the one the stored text was made with (shipped beside the data).
        self.reencoder_is_shipped = False
        self._fixed_text: dict[tuple[str, Setting], Tensor] = {}

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
        data = normalize_data(self._load(), self.normalization, self.cache_dir)
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
        shipped = data.text_encoder
        self.reencoder_is_shipped = shipped is not None and (
            Path(shipped).resolve() == Path(encoder_path).resolve()
        )
        if not self.reencoder_is_shipped:
            # Stored features from elsewhere: every view must come from this encoder.
            encode_complete_text(data, self.reencoder, self.cache_dir)

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
    def data_identity(self) -> str | None:
        """What the run key and the result rows record as the data (after :meth:`setup`).

        The SHA-256 of the file read; data generated from a recipe name the recipe instead
        (:class:`~msabench.datamodules.synthetic.SyntheticDataModule`).
        """
        return self.sha256

    @property
    def text_encoder_identity(self) -> str | None:
        """What the run key records as the text encoder (None unless the text view is ``reencoded``).

        The encoder's fingerprint; an encoder generated with its data from a recipe names the recipe instead.
        """
        return self.text_encoder_fingerprint

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
            return self._training_text(out) if self.train_policy.drops_tokens else out
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

    def _training_text(self, out: Batch) -> Batch:
        """The text of a training batch whose policy dropped tokens, re-encoded.

        A policy with the same masks in every epoch (``matched``, not resampled) has its training split's view
        made once, like an evaluation view, and read by index; any other is re-encoded batch by batch.
        """
        fixed = None if self.train_policy is None else self.train_policy.fixed_setting
        if fixed is None or self.text_view != "reencoded":
            return self.reencode(out)
        view = self._split_text("train", fixed, out["text"].device)
        out["text"] = view[out["index"].to(view.device)]
        return out

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

        Training and validation views live for the run (every epoch reads them); a test view is dropped when
        the next test setting starts, so memory holds at most one of them.
        """
        key = (split, setting)
        if key not in self._fixed_text:
            LOG.info("re-encoding the %s text under %s with the frozen text encoder", split, setting.name)
            if split == "test":
                self._fixed_text = {k: v for k, v in self._fixed_text.items() if k[0] != "test"}
            dataset = self.dataset(split)
            parts = []
            for start in range(0, len(dataset), self.eval_batch_size):
                rows = np.arange(start, min(start + self.eval_batch_size, len(dataset)))
                complete = {k: v.to(device) for k, v in cast(dict[str, Tensor], dataset[rows]).items()}
                parts.append(self.missing_view(complete, setting, split)["text"])  # type: ignore[arg-type]
            self._fixed_text[key] = torch.cat(parts)
        return self._fixed_text[key]
