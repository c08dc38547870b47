"""The runner's parts: run identity and key, the Trainer from config, result rows, reuse of a finished run."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from msabench import store
from msabench.datamodules.synthetic import cached_synthetic, encoder_dir
from msabench.datamodules.synthetic import text as synthetic_text
from msabench.errors import ConfigError
from msabench.protocols import Setting
from msabench.runner import RunRequest, execute, make_setting, prepare
from msabench.runner.identity import run_key, run_name
from msabench.runner.request import compose
from msabench.runner.trainer import build_trainer

FAST = ["data.options.n_scale=0.05", "trainer.max_epochs=2", "trainer.patience=null", "data.batch_size=16"]
INTRA = make_setting("intra", 0.3)
INTER = make_setting("inter", condition="ta")


def _request(tmp_path: Path, *overrides: str, **fields: Any) -> RunRequest:
    settings = fields.pop("settings", [INTRA])
    return RunRequest(
        method="lf_dnn",
        settings=settings,
        output=tmp_path / "runs",
        extra_blocks=("smoke",),
        overrides=[*FAST, *overrides],
        **fields,
    )


def test_run_key_and_name_are_stable() -> None:
    identity = {
        "method": "lf_dnn",
        "dataset": "synthetic",
        "data": "0" * 64,
        "text_view": "reencoded",
        "text_encoder": "f" * 16,
        "train_policy": "matched",
        "matched": "intra@0.3",
        "seed": 1111,
        "config_hash": "a" * 64,
    }
    # A change here renames every stored run: a finished run would no longer be found and reused.
    assert run_key(identity) == "5e77c1fbdb56afbb"
    assert run_key(dict(reversed(identity.items()))) == run_key(identity)
    setting = Setting("condition", condition="ta")
    assert run_name("mosi", "mmin", "matched", setting, 3, "k") == "mosi__mmin__matched__condition-ta__s3__k"
    assert run_name("mosi", "mmin", "conditions", None, 3, "k") == "mosi__mmin__conditions__s3__k"


def test_the_key_holds_what_determines_the_run_and_nothing_else(tmp_path: Path) -> None:
    base = prepare(_request(tmp_path, train_policy="complete"))
    again = prepare(_request(tmp_path, train_policy="complete"))
    assert again.run_key == base.run_key and again.run_dir == base.run_dir
    elsewhere = prepare(
        _request(tmp_path / "other", "data.num_workers=1", "logging.csv=false", train_policy="complete")
    )
    assert elsewhere.run_key == base.run_key  # where and how results are written is not the run
    for changed in (
        _request(tmp_path, train_policy="complete", seed=2),
        _request(tmp_path, "trainer.max_epochs=3", train_policy="complete"),
        _request(tmp_path, train_policy="lnln"),
        _request(tmp_path, train_policy="complete", dataset="synthetic-sims"),
    ):
        assert prepare(changed).run_key != base.run_key
    # A policy that trains per setting keys and names its setting; any other policy is one run for all.
    matched = prepare(_request(tmp_path, train_policy="matched"))
    assert matched.per_setting and matched.run_dir.name.startswith(
        "synthetic__lf_dnn__matched__intra@0.3__s1111__"
    )
    other_rate = prepare(_request(tmp_path, train_policy="matched", settings=[make_setting("intra", 0.5)]))
    assert other_rate.run_key != matched.run_key
    two = prepare(_request(tmp_path, train_policy="complete", settings=[INTRA, INTER]))
    assert (
        not two.per_setting
        and two.run_key == base.run_key
        and two.run_dir.name.startswith("synthetic__lf_dnn__complete__s1111__")
    )


def _round_last_bits_differently(pickle_path: Path) -> None:
    """Rewrite generated data as a machine whose kernels round differently writes them: last bits differ."""
    with open(pickle_path, "rb") as handle:
        data = pickle.load(handle)
    for split in ("train", "valid", "test"):
        data[split]["text"] = np.nextafter(data[split]["text"], np.float32(np.inf))
    with open(pickle_path, "wb") as handle:
        pickle.dump(data, handle)
    weights_path = encoder_dir(pickle_path) / synthetic_text.WEIGHTS_FILE
    weights = load_file(weights_path)
    weights = {name: torch.nextafter(w, torch.tensor(np.inf)) for name, w in weights.items()}
    save_file(weights, weights_path, metadata={"format": "pt"})


def test_generated_data_are_keyed_by_their_recipe_a_data_file_by_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    first = prepare(_request(tmp_path))
    assert first.datamodule.data_identity == "generated:synthetic:v3:seed0:n0.05:sizes-default"
    sha256, fingerprint = first.datamodule.sha256, first.datamodule.text_encoder_fingerprint
    generated = cached_synthetic("synthetic", 0, 0.05)
    _round_last_bits_differently(generated)
    # The same request on another kind of machine: other bytes, the same run (a sweep there reuses it).
    other_machine = prepare(_request(tmp_path))
    assert other_machine.datamodule.sha256 != sha256
    assert other_machine.datamodule.text_encoder_fingerprint != fingerprint
    assert other_machine.run_key == first.run_key
    # A pickle the user gives is a file like any data file: its bytes are its identity.
    given = tmp_path / "given" / "synthetic.pkl"
    given.parent.mkdir()
    shutil.copy(generated, given)
    shutil.copytree(encoder_dir(generated), encoder_dir(given))
    as_file = prepare(_request(tmp_path, f"data.path={given}"))
    assert as_file.datamodule.data_identity == as_file.datamodule.sha256
    _round_last_bits_differently(given)
    assert prepare(_request(tmp_path, f"data.path={given}")).run_key != as_file.run_key


def test_the_trainer_takes_the_trainer_block_as_it_is(tmp_path: Path) -> None:
    _, _, cfg = compose(
        _request(
            tmp_path,
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=0.5",
            "trainer.accumulate_grad_batches=2",
            "trainer.enable_progress_bar=false",
            "trainer.accelerator=cpu",
        )
    )
    trainer = build_trainer(cfg, tmp_path, callbacks=[], logger=False)
    assert (trainer.max_epochs, trainer.accumulate_grad_batches) == (3, 2)
    assert trainer.limit_train_batches == 2 and isinstance(trainer.limit_train_batches, int)  # a count
    assert trainer.limit_val_batches == 0.5  # a fraction
    assert trainer.num_sanity_val_steps == 0 and trainer.progress_bar_callback is None


def test_rows_reuse_and_a_setting_added_to_a_finished_run(tmp_path: Path) -> None:
    request = _request(tmp_path, train_policy="complete")
    first = execute(request)
    assert list(first.columns) == list(store.RESULT_COLUMNS)
    assert first.attrs["cached"] is False and set(first["status"]) == {"finished"}
    assert set(first["setting"]) == {"intra@0.3"} and first["metric"].is_unique
    row = first.iloc[0]
    assert (row["method"], row["train_policy"], row["protocol"], row["rate"]) == (
        "lf_dnn",
        "complete",
        "intra",
        0.3,
    )
    assert row["msabench_version"] and row["git_commit"] and row["params"] > 0 and row["ckpt_epoch"] >= 1
    # The budget is recorded beside its use: the cap and the patience of the (final) stage.
    assert row["epochs"] <= row["max_epochs"] == 2 and pd.isna(row["patience"]) and row["device"] == "cpu"
    run_dir = Path(first.attrs["run_dir"])
    before = (run_dir / "model.ckpt").read_bytes()
    stored = store.read_run(run_dir)
    assert stored["value"].tolist() == first["value"].tolist()  # stored at full precision

    again = execute(_request(tmp_path, train_policy="complete"))
    assert again.attrs["cached"] is True
    pd.testing.assert_frame_equal(again, stored)

    both = execute(_request(tmp_path, train_policy="complete", settings=[INTRA, INTER]))
    assert both.attrs["cached"] is True and set(both["setting"]) == {"intra@0.3", "condition:ta"}
    added = both[both["setting"] == "condition:ta"].iloc[0]
    assert added["device"] == "cpu"  # the training run's device, from its status
    assert added[["epochs", "max_epochs", "ckpt_epoch"]].tolist() == [row["epochs"], 2, row["ckpt_epoch"]]
    kept = both[both["setting"] == "intra@0.3"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, stored, check_dtype=False)  # the stored rows stay as they were
    assert (run_dir / "model.ckpt").read_bytes() == before  # tested on the checkpoint, not retrained
    assert set(store.read_run(run_dir)["setting"]) == {"intra@0.3", "condition:ta"}
    assert [p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()] == [run_dir.name]


def test_one_matched_run_serves_every_setting_that_removes_nothing(tmp_path: Path) -> None:
    complete = [
        make_setting("intra", 0.0),
        make_setting("inter", 0.0),
        make_setting("inter", condition="tav"),
    ]
    frame = execute(_request(tmp_path, train_policy="matched", settings=complete))
    assert set(frame["setting"]) == {"intra@0", "inter@0", "condition:tav"}
    assert Path(frame.attrs["run_dir"]).name.startswith("synthetic__lf_dnn__matched__intra@0__")
    by_setting = frame.pivot_table(index="metric", columns="setting", values="value")
    assert (by_setting.nunique(axis=1) == 1).all()  # one model, the same data: the same numbers
    alone = execute(_request(tmp_path, train_policy="matched", settings=complete[:1]))
    assert alone.attrs["cached"] is True  # the same run as intra@0 alone: its key names the first setting
    with pytest.raises(ConfigError, match="one model per test setting"):
        execute(_request(tmp_path, train_policy="matched", settings=[complete[0], INTRA]))
