"""A finished run reopened from its directory; its checkpoint tested with running and batch statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from msabench import store
from msabench.errors import OutputError
from msabench.runner import RunRequest, execute, make_setting, reopen
from msabench.runner.reopen import as_overrides
from msabench.tools.bench_batchnorm import main, predict_with, report

FAST = ["data.options.n_scale=0.05", "trainer.max_epochs=2", "trainer.patience=null", "data.batch_size=16"]
SETTINGS = [make_setting("intra", 0.5), make_setting("inter", condition="t")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished lf_dnn run (two BatchNorm layers), trained once for the module, tested on two settings."""
    request = RunRequest(
        method="lf_dnn",
        settings=SETTINGS,
        train_policy="lnln",
        output=tmp_path_factory.mktemp("bn") / "runs",
        extra_blocks=("smoke",),
        overrides=FAST,
    )
    return Path(execute(request).attrs["run_dir"])


def test_overrides_give_the_config_back() -> None:
    config = {
        "a": {"b": 1, "lr": "1e-3", "none": None, "flag": True, "widths": [8, 4], "empty": {}},
        "s": "null",
    }
    assert OmegaConf.to_container(OmegaConf.from_dotlist(as_overrides(config))) == config


def test_a_reopened_run_is_the_run_that_was_trained(run_dir: Path) -> None:
    prepared = reopen(run_dir)
    assert prepared.run_key == store.read_status(run_dir)["run_key"]
    assert prepared.run_dir == run_dir
    assert [s.name for s in prepared.request.settings] == [s.name for s in SETTINGS]


def test_the_running_pass_reproduces_the_recorded_results_and_the_batch_pass_differs(run_dir: Path) -> None:
    rows = report(run_dir)
    assert [(r["setting"], r["statistics"]) for r in rows] == [
        (s.name, statistics) for s in SETTINGS for statistics in ("running", "batch")
    ]
    assert {r["layers"] for r in rows} == {2}
    recorded = store.read_run(run_dir).set_index(["setting", "metric"])["value"]
    for row in rows:
        if row["statistics"] == "running":
            for metric in ("acc2_has0", "mae", "corr"):
                np.testing.assert_equal(row[metric], recorded[(row["setting"], metric)])
    prepared = reopen(run_dir)
    running, batch = predict_with(prepared, "running"), predict_with(prepared, "batch")
    for name, result in running.items():
        np.testing.assert_array_equal(result.labels, batch[name].labels)
        assert not np.allclose(result.predictions, batch[name].predictions)
    # A batch pass leaves the checkpoint as it was: testing with running statistics again gives the same.
    again = predict_with(prepared, "running")
    for name, result in running.items():
        np.testing.assert_array_equal(result.predictions, again[name].predictions)


def test_a_run_whose_config_no_longer_gives_its_key_is_refused(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / run_dir.name
    copy.mkdir()
    for name in ("config.yaml", "model.ckpt", "results.csv", "status.json"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["optim"]["lr"] = config["optim"]["lr"] * 2
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(OutputError, match="cannot be rebuilt by this msabench: its run key is"):
        reopen(copy)


def test_a_directory_that_is_not_a_finished_run_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: ") and "is not a finished run with its checkpoint" in err and "\n" not in err
    )


def test_an_unknown_setting_names_the_run_s_settings(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(run_dir), "--settings", "intra@0.9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "was not tested on intra@0.9: its settings are intra@0.5, condition:t" in err
