"""Every registered method trains on batches where modalities are wholly absent (no positions at all).

An absent modality's ``m_valid`` row is all False; the losses that target the complete view read
``m_valid_full``. A training step must stay finite, gradients included. (That the prediction ignores an absent
modality is proven with everything else a protocol removes in test_nothing_removed_reaches_a_prediction.py.)
No method is named here: a new method is covered by its ``smoke`` config block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from msabench.config import compose
from msabench.core.batch import Batch
from msabench.datamodules.synthetic import SyntheticDataModule
from msabench.models import get, names
from msabench.models.base import MSAMethod
from msabench.protocols import build_policy

DATASETS = {"synthetic": "mosi", "synthetic-iemocap": "iemocap"}


@pytest.fixture(scope="module")
def datamodules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SyntheticDataModule]:
    cache: Path = tmp_path_factory.mktemp("absent-modality")
    out = {}
    for name in DATASETS:
        dm = SyntheticDataModule(
            name, n_scale=0.02, cache_dir=cache, train_policy=None, validation=[], test=[], seed=0
        )
        dm.setup()
        out[name] = dm
    return out


def build(method: str, dataset: str, dm: SyntheticDataModule) -> MSAMethod:
    cfg = compose(method, dataset, DATASETS[dataset], extra_blocks=("smoke",))
    torch.manual_seed(0)
    return get(method)(cfg, dm.dims)


def first_samples(dm: SyntheticDataModule, split: str, size: int = 8) -> Batch:
    return dm.dataset(split)[np.arange(min(size, dm.split_sizes[split]))]


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("method", names())
def test_training_step_with_absent_modalities_is_finite(
    method: str, dataset: str, datamodules: dict[str, SyntheticDataModule]
) -> None:
    dm = datamodules[dataset]
    module = build(method, dataset, dm).train()
    policy = build_policy("conditions")
    batch = policy.apply(
        first_samples(dm, "train"),
        seed=0,
        epoch=0,
        split_size=dm.split_sizes["train"],
        keep_text_boundaries=dm.keep_text_boundaries,
    )
    assert not bool(batch["available"].all(dim=0).any()), "every modality should be absent somewhere"
    parts = module.training_loss(batch)
    for name, value in parts.items():
        assert torch.isfinite(value).all(), f"{name} = {value}"
    parts["loss"].backward()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
