import importlib.util
import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning
import numpy as np
import pytest
import torch

from msabench.datamodules import DATASETS, DataDims, MSADataModule, base, build_datamodule
from msabench.datamodules.base import IndexBatchSampler, Ragged
from msabench.errors import ConfigError, UnknownNameError
from msabench.protocols import build_policy
from msabench.protocols.settings import Setting

FAKE = Path(__file__).parents[1] / "data" / "make_fake_data.py"
spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake)

VALIDATION = [Setting("intra", rate=0.5)]
TEST = [Setting("intra", rate=0.0), Setting("intra", rate=0.3), Setting("condition", condition="ta")]


class RecordingPolicy:
    drops_tokens = False

    def __init__(self):
        self.calls = []

    def apply(self, batch, **kwargs):
        self.calls.append(kwargs)
        return {**batch, "policy": True}


@pytest.fixture
def dm(tmp_path, monkeypatch):
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    path = fake.make_mmsa(tmp_path / "mosi.pkl")
    module = build_datamodule(
        "mosi",
        data_path=path,
        train_policy=RecordingPolicy(),
        validation=VALIDATION,
        test=TEST,
        seed=7,
        batch_size=4,
        eval_batch_size=3,
        text_view="stored",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module.setup("fit")
    return module


def test_registry():
    assert DATASETS == (
        "synthetic",
        "synthetic-mosei",
        "synthetic-sims",
        "synthetic-iemocap",
        "mosi",
        "mosei",
        "sims",
        "iemocap",
    )
    with pytest.raises(UnknownNameError, match="unknown dataset 'mosii'. Did you mean 'mosi'\\?") as info:
        build_datamodule("mosii", train_policy=None, validation=[], test=[], seed=0)
    assert "synthetic-iemocap" in str(info.value)
    with pytest.raises(ConfigError, match="dataset mosi has no option 'fold'.*variant"):
        build_datamodule("mosi", train_policy=None, validation=[], test=[], seed=0, fold=2)
    assert isinstance(
        build_datamodule(" MOSI ", train_policy=None, validation=[], test=[], seed=0), MSADataModule
    )


def test_dims_before_setup():
    module = build_datamodule("mosi", train_policy=None, validation=[], test=[], seed=0)
    with pytest.raises(RuntimeError, match="setup"):
        module.dims  # noqa: B018


def test_setup_is_idempotent(dm):
    data = dm.data
    dm.setup("test")
    assert dm.data is data and isinstance(dm.dims, DataDims)


def test_ragged_reads_as_padded():
    sequences = [
        np.arange(6, dtype=np.float32).reshape(3, 2),
        np.zeros((0, 2), np.float32),
        np.ones((1, 2), np.float32),
    ]
    ragged = Ragged(np.concatenate(sequences), np.array([3, 0, 1]), length=4)
    assert ragged.shape == (3, 4, 2) and len(ragged) == 3
    expected = np.zeros((3, 4, 2), np.float32)
    expected[0, :3] = sequences[0]
    expected[2, :1] = 1
    np.testing.assert_array_equal(ragged[np.array([0, 1, 2])], expected)
    np.testing.assert_array_equal(ragged[np.array([2, 0])], expected[[2, 0]])


def test_batched_indexing_equals_stacked_samples(dm):
    dataset = dm.dataset("train")
    indices = [5, 0, 3, 3]
    batch = dataset[indices]
    samples = [dataset[i] for i in indices]
    assert set(batch) == set(samples[0])
    for key, value in batch.items():
        torch.testing.assert_close(value, torch.stack([s[key] for s in samples]))
    assert batch["index"].tolist() == indices


def test_sampler_orders():
    evaluation = IndexBatchSampler(10, 4, shuffle=False)
    assert list(evaluation) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]] == list(evaluation)
    train = IndexBatchSampler(10, 4, shuffle=True, seed=3)
    assert len(train) == 3
    train.set_epoch(0)
    epoch0 = list(train)
    train.set_epoch(0)
    assert list(train) == epoch0  # a pure function of (seed, epoch)
    train.set_epoch(1)
    epoch1 = list(train)
    assert epoch1 != epoch0 and sorted(sum(epoch1, [])) == list(range(10))
    assert [len(b) for b in epoch1] == [4, 4, 2]  # drop_last is False
    other_seed = IndexBatchSampler(10, 4, shuffle=True, seed=4)
    other_seed.set_epoch(0)
    assert list(other_seed) != epoch0
    plain = IndexBatchSampler(10, 4, shuffle=True, seed=3)
    assert list(plain) == epoch0 and list(plain) == epoch1  # without set_epoch, passes advance the epoch


def test_dataloaders(dm):
    train = dm.train_dataloader()
    batches = list(train)
    assert [len(b["index"]) for b in batches] == [4, 2]
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == list(range(6))
    assert len(dm.val_dataloader()) == 1 and len(dm.test_dataloader()) == 3
    for loader in dm.test_dataloader():
        first = [b["index"].tolist() for b in loader]
        assert first == [[0, 1, 2], [3]] == [b["index"].tolist() for b in loader]
    batch = next(iter(dm.val_dataloader()[0]))
    assert batch["text"].dtype == torch.float32 and batch["label"].dtype == torch.float32


class FakeTrainer(SimpleNamespace):
    training = validating = sanity_checking = testing = predicting = False
    current_epoch = 0


def test_on_after_batch_transfer_dispatch(dm, monkeypatch):
    calls = []

    def apply_setting(batch, setting, **kwargs):
        calls.append((setting, kwargs))
        return {**batch, "setting": setting}

    monkeypatch.setattr(base, "apply_setting", apply_setting)
    batch = dm.dataset("train")[[0, 1]]

    dm.trainer = FakeTrainer(training=True, current_epoch=4)
    assert dm.on_after_batch_transfer(batch, 0)["policy"]
    assert dm.train_policy.calls == [{"seed": 7, "epoch": 4, "split_size": 6, "keep_text_boundaries": True}]

    dm.trainer = FakeTrainer(sanity_checking=True)
    assert dm.on_after_batch_transfer(batch, 0)["setting"] == VALIDATION[0]
    dm.trainer = FakeTrainer(validating=True)
    dm.on_after_batch_transfer(batch, 0)
    dm.trainer = FakeTrainer(testing=True)
    assert dm.on_after_batch_transfer(batch, 2)["setting"] == TEST[2]
    dm.trainer = FakeTrainer(predicting=True)
    assert dm.on_after_batch_transfer(batch, 1)["setting"] == TEST[1]
    assert [c[1] for c in calls] == [
        {"split": "valid", "split_size": 3, "keep_text_boundaries": True},
        {"split": "valid", "split_size": 3, "keep_text_boundaries": True},
        {"split": "test", "split_size": 4, "keep_text_boundaries": True},
        {"split": "test", "split_size": 4, "keep_text_boundaries": True},
    ]


def test_real_protocols_on_a_test_batch(dm):
    dm.trainer = FakeTrainer(testing=True)
    batch = next(iter(dm.test_dataloader()[2]))
    out = dm.on_after_batch_transfer(batch, 2)  # condition "ta": vision removed
    assert out["available"][:, 2].eq(False).all() and out["available"][:, :2].all()
    assert not out["vision_keep"].any() and out["vision"].eq(0).all()
    assert "text_full" not in out


class Tiny(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(7, 1)
        self.train_order, self.test_order, self.val_batches = [], [], []

    def training_step(self, batch, batch_idx):
        assert "vision_full" in batch and "vision_keep" in batch  # the policy ran on the training batch
        self.train_order.extend(batch["index"].tolist())
        return (self.layer(batch["vision"].mean(1)).squeeze(-1) - batch["label"]).pow(2).mean()

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        assert "vision_full" not in batch and "vision_keep" in batch
        self.val_batches.append(batch["index"].tolist())

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        self.test_order.append((dataloader_idx, batch["index"].tolist()))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_lightning_loop(dm):
    dm.train_policy = build_policy("complete")
    model = Tiny()
    trainer = lightning.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        num_sanity_val_steps=1,
    )
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    # Lightning sets the epoch: epoch e trains on the (seed 7, epoch e) permutation.
    expected = []
    for epoch in (0, 1):
        sampler = IndexBatchSampler(6, 4, shuffle=True, seed=7)
        sampler.set_epoch(epoch)
        expected.extend(i for batch in sampler for i in batch)
    assert model.train_order == expected and expected[:6] != expected[6:]
    assert model.val_batches == [[0, 1, 2]] * 3  # sanity check + two epochs, never shuffled
    assert model.test_order == [(i, [0, 1, 2]) if j == 0 else (i, [3]) for i in range(3) for j in range(2)]
