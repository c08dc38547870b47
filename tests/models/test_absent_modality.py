"""Every registered method is blind to a wholly absent modality: its values and its length.

After a protocol removes a modality from a sample, the prediction for that sample must not depend on anything
the modality held, its duration included. Each case takes real (tiny) synthetic batches, scrambles what the
protocol removes (the absent modality's raw values and its valid length in the complete batch), applies the
same setting to both, and compares the predictions. A training step with absent modalities must stay finite.
No method is named here: a new method is covered by its ``smoke`` config block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from msabench.config import compose
from msabench.datamodules.batch import MODALITIES, Batch
from msabench.datamodules.synthetic import SyntheticDataModule
from msabench.models import get, names
from msabench.models.base import MSAMethod
from msabench.protocols import Setting, apply_setting, build_policy

DATASETS = {"synthetic": "mosi", "synthetic-iemocap": "iemocap"}
# The condition that leaves exactly one modality out.
WITHOUT = {"text": "av", "audio": "tv", "vision": "ta"}
SETTINGS = [Setting("condition", condition=c) for c in WITHOUT.values()] + [Setting("inter", rate=0.5)]


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


def scramble(batch: Batch, rows: Tensor, modality: str, seed: int) -> Batch:
    """New values and a different valid length for ``modality`` in the samples ``rows`` (B,) of a batch."""
    gen = torch.Generator().manual_seed(seed)
    out: Batch = dict(batch)  # type: ignore[assignment]
    values, valid = batch[modality], batch[f"{modality}_valid"]  # type: ignore[literal-required]
    size, length = valid.shape
    old = valid.sum(dim=1)
    # Another length in [2, L] for every row, never the old one.
    new = 2 + (old - 2 + torch.randint(1, length - 1, (size,), generator=gen)) % (length - 1)
    new_valid = torch.arange(length) < new[:, None]
    noise = 3.0 * torch.randn(values.shape, generator=gen) + 1.0
    out[f"{modality}_valid"] = torch.where(rows[:, None], new_valid, valid)  # type: ignore[literal-required]
    out[modality] = torch.where(rows[:, None, None], noise * new_valid[..., None], values)  # type: ignore[literal-required]
    if modality == "text" and "text_ids" in batch:
        ids = torch.randint(1000, 20000, (size, length), generator=gen) * new_valid
        attention = new_valid.long()
        fresh = torch.stack([ids, attention, torch.zeros_like(ids)], dim=1)
        out["text_ids"] = torch.where(rows[:, None, None], fresh, batch["text_ids"])
    assert bool((out[f"{modality}_valid"].sum(dim=1) != old)[rows].all())  # type: ignore[literal-required]
    return out


def take(batch: Batch, rows: slice) -> Batch:
    """The batch of the samples ``rows``."""
    return {k: v[rows] for k, v in batch.items()}  # type: ignore[return-value]


def missing_view(dm: SyntheticDataModule, batch: Batch, setting: Setting) -> Batch:
    return apply_setting(
        batch,
        setting,
        split="test",
        split_size=dm.split_sizes["test"],
        keep_text_boundaries=dm.keep_text_boundaries,
    )


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("method", names())
def test_prediction_ignores_the_values_and_length_of_an_absent_modality(
    method: str, dataset: str, datamodules: dict[str, SyntheticDataModule]
) -> None:
    dm = datamodules[dataset]
    module = build(method, dataset, dm).eval()
    batch = first_samples(dm, "test")
    with torch.no_grad():
        for setting in SETTINGS:
            missing = missing_view(dm, batch, setting)
            prediction = module(missing)
            assert torch.isfinite(prediction).all(), f"{setting.name}: non-finite prediction"
            for j, modality in enumerate(MODALITIES):
                absent = ~missing["available"][:, j]
                if not bool(absent.any()):
                    continue
                changed = missing_view(dm, scramble(batch, absent, modality, seed=j), setting)
                assert torch.equal(changed["available"], missing["available"])
                torch.testing.assert_close(
                    module(changed),
                    prediction,
                    atol=1e-5,
                    rtol=1e-5,
                    msg=lambda text, s=setting.name, m=modality: f"{s}, absent {m}: {text}",
                )
            # A constant, not a function of the rest of the batch: each half alone gives the same predictions.
            half = len(prediction) // 2
            halves = torch.cat(
                [module(take(missing, slice(0, half))), module(take(missing, slice(half, None)))]
            )
            torch.testing.assert_close(halves, prediction, atol=1e-5, rtol=1e-4)
            if setting.protocol == "condition":
                # Not vacuous: the modalities that are present do move the prediction.
                present = [m for j, m in enumerate(MODALITIES) if bool(missing["available"][:, j].all())]
                changed, every = batch, torch.ones(len(prediction), dtype=torch.bool)
                for k, modality in enumerate(present):
                    changed = scramble(changed, every, modality, seed=10 + k)
                moved = module(missing_view(dm, changed, setting))
                assert not torch.allclose(moved, prediction, atol=1e-4), f"{setting.name}: constant output"


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
