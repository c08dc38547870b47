"""Datasets: MMSA pickles (MOSI, MOSEI, SIMS), IEMOCAP (MMIN layout) and the synthetic generator.

Datasets are registered by name with their datamodule and metric family
(:mod:`~msabench.datamodules.registry`); :func:`build_datamodule` builds one.

>>> dm = build_datamodule("synthetic", train_policy=policy, validation=[val], test=[test], seed=1111)
>>> dm.setup(); dm.dims.audio_dim
5
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from msabench.datamodules.registry import DatasetSpec, dataset_names, get_dataset, register_dataset
from msabench.errors import ConfigError

if TYPE_CHECKING:
    from msabench.datamodules.base import DataDims, MSADataModule, TrainingPolicy
    from msabench.datamodules.synthetic import export_synthetic
    from msabench.protocols.settings import Setting

__all__ = [
    "DATASETS",
    "DataDims",
    "DatasetSpec",
    "MSADataModule",
    "build_datamodule",
    "dataset_names",
    "export_synthetic",
    "get_dataset",
    "register_dataset",
]

# The datasets registered by msabench itself (see :func:`dataset_names` for the registry as it is now).
DATASETS: Final[tuple[str, ...]] = dataset_names(installed=False)
# Taken by every dataset's datamodule (the base's options); a dataset's own options come from its signature.
_SHARED: Final[frozenset[str]] = frozenset({"pin_memory", "cache_dir"})


def __getattr__(name: str) -> Any:
    # These load torch and Lightning: imported when asked for, so reading the registry stays light.
    if name in ("DataDims", "MSADataModule"):
        from msabench.datamodules import base

        return getattr(base, name)
    if name == "export_synthetic":
        from msabench.datamodules.synthetic import export_synthetic

        return export_synthetic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        name: a registered dataset (:func:`dataset_names`, case-insensitive).
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
        **options: dataset options: ``variant``, ``mmap`` (MMSA and synthetic); ``data_seed``, ``n_scale``
            (synthetic); ``fold``, ``target_root`` (IEMOCAP); ``pin_memory``, ``cache_dir`` (all).

    Raises:
        UnknownNameError: an unknown dataset.
        ConfigError: an option the dataset does not take, an unknown normalisation.
    """
    spec = get_dataset(name)
    key = spec.name
    cls = spec.datamodule_class()
    own = {
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD and p.name not in ("self", "name")
    }
    unknown = sorted(set(options) - own - _SHARED)
    if unknown:
        raise ConfigError(
            f"dataset {key} has no option {', '.join(repr(u) for u in unknown)}; its options are: "
            f"{', '.join(sorted(own | _SHARED))}"
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
