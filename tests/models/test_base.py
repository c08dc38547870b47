"""MSAMethod, the base every method shares: optimisers and schedules from config, the loss parts it logs, the
validation loss it selects on and the metrics it logs. A probe method defined here (not registered) runs on
the fake MOSI file; no test depends on a shipped method's network.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from msabench.core.batch import Batch
from msabench.core.vocabulary import MODALITIES
from msabench.datamodules import DataDims
from msabench.errors import ConfigError
from msabench.metrics import METRIC_NAMES
from msabench.models.base import MSAMethod, NonFiniteLossError, lr_multiplier
from msabench.runner import PreparedRun, RunRequest, make_setting, prepare


class Probe(MSAMethod):
    """Masked means of the three modalities into one linear head; records every validation sample's loss."""

    def build_network(self, model_cfg: DictConfig, dims: DataDims) -> nn.Module:
        self.seen: list[Tensor] = []
        return nn.Linear(dims.text_dim + dims.audio_dim + dims.vision_dim, self.output_dim)

    def forward(self, batch: Batch) -> Tensor:
        pooled = []
        for m in MODALITIES:
            keep = batch[f"{m}_valid"].unsqueeze(-1).float()  # type: ignore[literal-required]
            pooled.append((batch[m] * keep).sum(1) / keep.sum(1).clamp(min=1))  # type: ignore[literal-required]
        return self.network(torch.cat(pooled, dim=-1)).squeeze(-1)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        task = self.task_loss(self(batch), batch["label"])
        return {"loss": 2.0 * task, "task": task}

    def validation_loss(self, batch: Batch, prediction: Tensor) -> dict[str, Tensor]:
        self.seen.append((prediction.reshape(-1) - batch["label"]).abs().detach())
        return super().validation_loss(batch, prediction)


class NaNProbe(Probe):
    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": self(batch).sum() * float("nan")}


def _prepared(fake_mosi: Path, tmp_path: Path, *overrides: str) -> PreparedRun:
    return prepare(
        RunRequest(
            method="lf_dnn",  # only its config: the probe brings its own network
            settings=[make_setting("inter", condition="ta")],  # whole modalities: no text encoder needed
            dataset="mosi",
            data_path=str(fake_mosi),
            train_policy="complete",
            output=tmp_path / "runs",
            overrides=["data.batch_size=4", "data.eval_batch_size=2", *overrides],
        )
    )


def _trainer(**kwargs: Any) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def test_validation_loss_is_the_mean_over_samples_and_every_metric_is_logged(
    fake_mosi: Path, tmp_path: Path
) -> None:
    prepared = _prepared(fake_mosi, tmp_path)
    module = Probe(prepared.cfg, prepared.datamodule.dims)
    metrics = _trainer().validate(module, datamodule=prepared.datamodule, verbose=False)[0]
    sizes = [len(x) for x in module.seen]
    assert sizes == [2, 1]  # three validation samples in batches of two: a mean of batch means would differ
    per_sample = torch.cat(module.seen).double()
    expected = per_sample.mean().item()
    assert expected != pytest.approx(sum(x.double().mean().item() for x in module.seen) / len(sizes))
    assert metrics["val/loss"] == pytest.approx(expected, rel=1e-6)
    assert set(metrics) == {"val/loss", *(f"val/{m}" for m in METRIC_NAMES["mosi"])}
    assert not any("val_loss" in key for key in module.state_dict())  # checkpoints hold weights only


def test_training_logs_the_total_and_each_part_and_refuses_a_non_finite_loss(
    fake_mosi: Path, tmp_path: Path
) -> None:
    prepared = _prepared(fake_mosi, tmp_path)
    module = Probe(prepared.cfg, prepared.datamodule.dims)
    trainer = _trainer(max_epochs=1, limit_val_batches=0)
    trainer.fit(module, datamodule=prepared.datamodule)
    logged = trainer.callback_metrics
    assert logged["train/loss"].item() == pytest.approx(2.0 * logged["train/task"].item(), rel=1e-5)
    with pytest.raises(NonFiniteLossError, match="non-finite training loss at epoch 0: loss=nan"):
        _trainer(max_epochs=1, limit_val_batches=0).fit(
            NaNProbe(prepared.cfg, prepared.datamodule.dims), datamodule=prepared.datamodule
        )


def test_optimizer_and_schedule_come_from_the_config(fake_mosi: Path, tmp_path: Path) -> None:
    prepared = _prepared(
        fake_mosi,
        tmp_path,
        "optim.name=adamw",
        "optim.lr=0.01",
        "optim.weight_decay=0.1",
        "optim.betas=[0.5,0.9]",
        "optim.scheduler.name=linear_decay",
        "optim.scheduler.n_const=2",
        "optim.scheduler.n_decay=2",
    )
    module = Probe(prepared.cfg, prepared.datamodule.dims)
    configured = module.configure_optimizers()
    optimizer = configured["optimizer"]
    assert type(optimizer) is torch.optim.AdamW
    (group,) = optimizer.param_groups
    assert (group["lr"], group["weight_decay"], group["betas"]) == (0.01, 0.1, (0.5, 0.9))
    assert len(group["params"]) == len(list(module.network.parameters()))
    schedule = configured["lr_scheduler"]
    assert schedule["interval"] == "epoch"
    # linear_decay: constant for n_const epochs, then down to 0 over n_decay + 1 (1-based epochs).
    assert [schedule["scheduler"].lr_lambdas[0](e) for e in range(5)] == pytest.approx(
        [1, 1, 2 / 3, 1 / 3, 0]
    )

    plain = Probe(_prepared(fake_mosi, tmp_path).cfg, prepared.datamodule.dims).configure_optimizers()
    assert type(plain) is torch.optim.Adam  # no schedule: the optimizer alone

    with pytest.raises(ConfigError, match="unknown optim.name 'sgd': use adam or adamw"):
        _prepared(fake_mosi, tmp_path, "optim.name=sgd")  # the runner builds the optimizer before any run


def test_warmup_cosine_warms_up_then_anneals_to_zero() -> None:
    multiplier = lr_multiplier({"name": "warmup_cosine", "warmup_fraction": 0.2}, 10)
    values = [multiplier(e) for e in range(11)]
    assert values[:2] == [0.5, 1.0]  # two warm-up epochs (20 % of 10)
    assert values[2] == 1.0 and values[6] == pytest.approx(0.5) and values[10] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(values[2:], values[3:], strict=False))
    assert lr_multiplier({"name": "none"}, 10) is None
    with pytest.raises(ConfigError, match="unknown optim.scheduler.name 'step'"):
        lr_multiplier({"name": "step"}, 10)
    assert math.isclose(lr_multiplier({"name": "linear_decay", "n_const": 0, "n_decay": 0}, 1)(0), 0.0)


def test_weighted_total_sums_in_order_keeps_groups_and_returns_every_named_term() -> None:
    a, b, c, d = (torch.tensor(v) for v in (1.0, 2.0, 3.0, 4.0))
    parts = MSAMethod.weighted_total(
        None, {"a": (1.0, a), "g": (0.5, {"b": (2.0, b), "c": (1, c)}), "d": (3, d)}
    )  # type: ignore[arg-type]
    assert list(parts) == ["loss", "a", "b", "c", "d"]  # the group's own name is not a logged part
    assert float(parts["loss"]) == 1.0 + 0.5 * (2.0 * 2.0 + 3.0) + 3 * 4.0
    assert all(parts[k] is t for k, t in zip("abcd", (a, b, c, d), strict=True))
    with pytest.raises(ValueError):
        MSAMethod.weighted_total(None, {})  # type: ignore[arg-type]
