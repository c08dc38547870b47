"""The profile's phases: each Lightning action counted once; a real run's phases add up to its wall time."""

from __future__ import annotations

from pathlib import Path

import pytest

from msabench.tools import bench_profile as bp


def test_nested_actions_are_counted_once() -> None:
    durations = {
        "[_TrainingEpochLoop].train_dataloader_next": [0.5, 0.5],
        "[Strategy]SingleDeviceStrategy.batch_to_device": [1.0, 2.0],  # holds the datamodule's hook
        "[LightningDataModule]SyntheticDataModule.on_after_batch_transfer": [0.5, 1.5],
        "[Strategy]SingleDeviceStrategy.training_step": [2.0],
        "[Strategy]SingleDeviceStrategy.backward": [3.0],
        "[LightningModule]LFDNNMethod.optimizer_step": [6.0],  # holds training_step and backward
        "[Strategy]SingleDeviceStrategy.validation_step": [1.0],
        "save_checkpoint": [0.25],
        "run_training_epoch": [100.0],  # a container: never counted
    }
    out = bp.phases(durations, setup_s=4.0, total_s=30.0)
    assert out["data"] == pytest.approx(1.0 + 3.0 - 2.0)
    assert out["protocol"] == pytest.approx(2.0)
    assert (out["forward+loss"], out["backward"], out["optimizer"]) == pytest.approx((2.0, 3.0, 1.0))
    assert (out["validation"], out["checkpoint"], out["setup"]) == pytest.approx((1.0, 0.25, 4.0))
    assert sum(out.values()) == pytest.approx(30.0)
    assert out["other"] == pytest.approx(30.0 - 4.0 - 2.0 - 2.0 - 2.0 - 3.0 - 1.0 - 1.0 - 0.25)


def test_a_real_run_is_profiled_phase_by_phase(tmp_path: Path) -> None:
    overrides = [
        "trainer.max_epochs=2",
        "trainer.patience=null",
        "data.batch_size=8",
        "data.eval_batch_size=16",
        "data.options.n_scale=0.05",
    ]
    seconds, metrics, facts = bp.profile_run(
        "lf_dnn", "intra", 0.3, None, overrides, tmp_path / "runs", extra_blocks=("smoke",)
    )
    assert sum(seconds.values()) == pytest.approx(facts["total_s"])
    for phase in ("setup", "data", "protocol", "forward+loss", "backward", "optimizer", "validation", "test"):
        assert seconds[phase] > 0, phase
    assert seconds["checkpoint"] > 0  # the selected weights are written at least once
    assert facts["epochs"] == 2 and facts["protocol_train_s"] > 0 and facts["protocol_eval_s"] > 0
    assert {"acc2_has0", "mae"} <= set(metrics)
    assert "forward+loss" in bp.render(seconds)
