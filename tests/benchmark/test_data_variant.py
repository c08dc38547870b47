"""Every result row records the data variant, and the variant is part of the run key."""

from pathlib import Path

import pandas as pd
import pytest

from msabench.protocols import Setting
from msabench.runner import RunRequest, execute, prepare
from msabench.store import RESULTS_FILE

OVERRIDES = [
    "trainer.max_epochs=1",
    "trainer.patience=null",
    "data.batch_size=16",
    "data.eval_batch_size=64",
    "data.options.n_scale=0.02",
]


def request(tmp_path: Path, *extra: str) -> RunRequest:
    return RunRequest(
        method="lf_dnn",
        train_policy="complete",
        seed=7,
        settings=[Setting("intra", rate=0.5)],
        output=tmp_path / "runs",
        overrides=[*OVERRIDES, *extra],
        extra_blocks=["smoke"],
    )


def test_rows_and_run_key_carry_the_data_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    plain = prepare(request(tmp_path))
    zscored = prepare(request(tmp_path, "data.normalize=train_zscore"))
    assert (plain.datamodule.data_variant, zscored.datamodule.data_variant) == (
        "unaligned",
        "unaligned+zscore",
    )
    assert plain.run_key != zscored.run_key
    frame = execute(request(tmp_path, "data.normalize=train_zscore"))
    assert frame.attrs["run_dir"].endswith(zscored.run_key)
    stored = pd.read_csv(Path(frame.attrs["run_dir"]) / RESULTS_FILE)
    for rows in (frame, stored):
        assert set(rows["data_variant"]) == {"unaligned+zscore"}
        assert list(rows.columns).index("data_variant") == list(rows.columns).index("data_sha256") + 1


def test_unknown_normalisation_is_refused_before_loading(tmp_path: Path) -> None:
    from msabench.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown data.normalize 'z'"):
        prepare(request(tmp_path, "data.normalize=z"))
    assert not (tmp_path / "runs").exists()


def test_method_data_defaults() -> None:
    from msabench import config

    assert config.compose("umdf", "mosi", "mosi").data.options.variant == "aligned"
    assert config.compose("umdf", "mosei", "mosi").data.options.variant == "aligned"
    assert config.compose("umdf", "synthetic", "mosi").data.options.variant == "unaligned"
    assert config.compose("mitr_dnet", "sims", "sims").data.normalize == "train_zscore"
    assert config.compose("mitr_dnet", "mosi", "mosi").data.normalize == "none"


def test_umdf_reads_the_aligned_file_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    fake_path = Path(__file__).parents[1] / "data" / "make_fake_data.py"
    spec = importlib.util.spec_from_file_location("make_fake_data", fake_path)
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "data"
    fake.make_mmsa(root / "MOSI" / "Processed" / "aligned_50.pkl", aligned=True)
    fake.make_mmsa(root / "MOSI" / "Processed" / "unaligned_50.pkl")
    prepared = prepare(
        RunRequest(
            method="umdf",
            dataset="mosi",
            data_root=str(root),
            settings=[Setting("intra", rate=0.5)],
            text_view="stored",  # the fake file ships no encoder
            output=tmp_path / "runs",
            extra_blocks=["smoke"],
        )
    )
    assert prepared.datamodule.data_variant == "aligned"
    assert prepared.datamodule.data.source.endswith("aligned_50.pkl")
    assert prepared.datamodule.dims.audio_len == prepared.datamodule.dims.text_len
