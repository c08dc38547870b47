"""Datasets: MMSA pickles (MOSI, MOSEI, SIMS), IEMOCAP (MMIN layout) and the synthetic generator.

>>> dm = build_datamodule("synthetic", train_policy=policy, validation=[val], test=[test], seed=1111)
>>> dm.setup(); dm.dims.audio_dim
5
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from msabench.datamodules.base import DataDims, MSADataModule
from msabench.datamodules.synthetic import SYNTHETIC_DATASETS, export_synthetic
from msabench.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from msabench.datamodules.base import TrainingPolicy
    from msabench.protocols.settings import Setting

__all__ = ["DATASETS", "DataDims", "MSADataModule", "build_datamodule", "export_synthetic"]

DATASETS: Final[tuple[str, ...]] = (*SYNTHETIC_DATASETS, "mosi", "mosei", "sims", "iemocap")


def _datamodule_class(name: str) -> type[MSADataModule]:
    # Imported here so `import msabench.datamodules` does not pull in h5py for users of the pickles.
    if name in SYNTHETIC_DATASETS:
        from msabench.datamodules.synthetic import SyntheticDataModule

        return SyntheticDataModule
    if name == "iemocap":
        from msabench.datamodules.iemocap import IEMOCAPDataModule

        return IEMOCAPDataModule
    from msabench.datamodules.mmsa import MMSADataModule

    return MMSADataModule


def build_datamodule(
    name: str,
    *,
    data_path: str | Path | None = None,
    data_root: str | Path | None = None,
    train_policy: TrainingPolicy | None,
    validation: Sequence[Setting],
    test: Sequence[Setting],
    seed: int,
    batch_size: int = 64,
    eval_batch_size: int | None = None,
    num_workers: int = 0,
    text_view: str = "auto",
    bert_path: str | Path | None = None,
    normalize: str = "none",
    **options: Any,
) -> MSADataModule:
    """Build the datamodule of a dataset (not yet set up: call ``setup()`` to load the data).

    Args:
        name: one of :data:`DATASETS` (case-insensitive).
        data_path: the data file (MMSA pickle) or folder (IEMOCAP feature root).
        data_root: the folder holding the datasets (default ``$MSABENCH_DATA``).
        train_policy: draws the training batches' missingness.
        validation: one validation dataloader per setting.
        test: one test dataloader per setting.
        seed: the run seed (training shuffle and policy).
        batch_size: training batch size.
        eval_batch_size: validation/test batch size (default ``batch_size``).
        num_workers: dataloader workers.
        text_view: ``auto``, ``reencoded`` or ``stored``: how contextual text is treated when tokens are
            dropped (see :mod:`msabench.datamodules.text_view`).
        bert_path: the local encoder the stored text was made with (the synthetic data ship their own).
        normalize: ``none`` or ``train_zscore`` (audio and vision z-scored with the training split's
            statistics; see :mod:`msabench.datamodules.normalize`).
        **options: dataset options: ``variant``, ``mmap``, ``cache_dir`` (MMSA); ``data_seed``, ``n_scale``,
            ``cache_dir`` (synthetic); ``fold``, ``target_root`` (IEMOCAP); ``pin_memory`` (all).

    Raises:
        UnknownNameError: an unknown dataset.
        ConfigError: an option the dataset does not take, an unknown normalisation.
    """
    key = name.strip().lower()
    if key not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    cls = _datamodule_class(key)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "name"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        valid = sorted(
            accepted
            - {
                "train_policy",
                "validation",
                "test",
                "seed",
                "batch_size",
                "eval_batch_size",
                "num_workers",
                "data_path",
                "data_root",
            }
        )
        raise ConfigError(
            f"dataset {key} has no option {', '.join(repr(u) for u in unknown)}; its options are: "
            f"{', '.join(valid)}"
        )
    module = cls(
        key,
        data_path=data_path,
        data_root=data_root,
        train_policy=train_policy,
        validation=validation,
        test=test,
        seed=seed,
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        num_workers=num_workers,
        **options,
    )
    module.use_text_view(text_view, bert_path)
    module.use_normalization(normalize)
    return module
