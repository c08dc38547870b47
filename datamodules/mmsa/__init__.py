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

The file is read and checked by :mod:`~msabench.datamodules.mmsa.read` (quirks handled as MMSA does, repairs
with a warning, refusals with one line). Every dimension comes from the data. The file's SHA-256 is compared
with MMSA's published values (a warning, never a refusal, for other copies). Files of 1 GiB or more (MOSEI)
are converted once into memory-mapped ``.npy`` arrays in the cache directory (``$MSABENCH_CACHE``, default
``~/.cache/msabench``), keyed by the file's hash; the conversion streams each large array of the pickle into a
file and memory-maps it (:class:`~msabench.datamodules.mmsa.safe_pickle.SpillingUnpickler`), so it never holds
the data in RAM.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from msabench.datamodules.base import (
    LoadedData,
    MetricFamily,
    MSADataModule,
    SplitData,
    cache_root,
    file_sha256,
    load_split_cache,
    save_split_cache,
)
from msabench.datamodules.mmsa.read import Variant, data_dims, data_variant, read_mmsa_splits
from msabench.datamodules.mmsa.safe_pickle import safe_load
from msabench.datamodules.registry import MMSA_DATAMODULE, DataFile, dataset_names, get_dataset
from msabench.errors import ConfigError, DatasetNotFoundError, DataWarning

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from msabench.datamodules.base import DataOptions

DATA_ENV: Final[str] = "MSABENCH_DATA"
MMSA_URL: Final[str] = "https://github.com/thuiar/MMSA (processed features)"
MMAP_THRESHOLD: Final[int] = 1 << 30
CACHE_FORMAT: Final[int] = 3  # 2: padding zeroed; 3: load warnings kept beside the cache


MMSAFile = DataFile  # a published MMSA file: its path under the data root and SHA-256
# The published files per dataset and variant, as registered (tests patch entries of these dicts).
MMSA_FILES: Final[dict[str, Mapping[str, DataFile]]] = {
    name: spec.files for name in dataset_names() if (spec := get_dataset(name)).datamodule == MMSA_DATAMODULE
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
    files = get_dataset(dataset).files
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
        for variant, file in variants.items():
            if sha256 == file.sha256:
                if name != dataset:
                    warnings.warn(
                        f"{path} is the published {name} {variant} file, but the dataset is {dataset}",
                        DataWarning,
                        stacklevel=2,
                    )
                return
    published = [f for f in get_dataset(dataset).files.values() if f.sha256 is not None]
    if not published:  # a dataset registered without published files: nothing to compare with
        return
    known = ", ".join(f"{f.relative_path} {f.sha256}" for f in published)
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
        dims=data_dims(splits, metric_family),
        sha256=sha256,
        keep_text_boundaries=has_ids,
        source=str(path),
        variant=data_variant(splits),
        cache_key=cache.name,
    )


class MMSADataModule(MSADataModule):
    """MOSI, MOSEI or SIMS from an MMSA processed pickle.

    Args:
        name: ``mosi``, ``mosei`` or ``sims``.
        variant: ``unaligned`` (default) or ``aligned`` (MOSI/MOSEI).
        mmap: memory-map the splits from a ``.npy`` cache (default: files of 1 GiB or more).
        **options: see :class:`~msabench.datamodules.base.MSADataModule`; ``data_path`` is the pickle,
            ``data_root`` the folder holding ``MOSI/``, ``MOSEI/``, ``SIMS/``.
    """

    def __init__(
        self,
        name: str,
        *,
        variant: Variant = "unaligned",
        mmap: bool | None = None,
        **options: Unpack[DataOptions],
    ) -> None:
        super().__init__(name, **options)
        files = get_dataset(name).files
        if variant not in files:
            raise ConfigError(f"{name} has no '{variant}' variant: use one of {', '.join(files)}")
        self.variant = variant
        self.mmap = mmap

    def _load(self) -> LoadedData:
        path = resolve_data_file(self.name, self.variant, self.data_path, self.data_root)
        sha256 = file_sha256(path, self.cache_dir)
        check_published_sha256(self.name, path, sha256)
        data = load_mmsa(
            path,
            metric_family=get_dataset(self.name).metric_family,
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
