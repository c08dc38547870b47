"""Mistakes are refused before torch and Lightning load (issue 37, item 3): one line, exit 2, in well under a
second instead of the 6-15 s those imports take."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from msabench.config import preflight
from msabench.errors import ConfigError, UnknownKeyError
from msabench.models import builtin_config, get, names

# Runs the CLI in a fresh interpreter and reports, at the moment it returns, its exit status, its stderr and
# which heavy modules it had imported.
PROBE = """
import contextlib, io, json, sys
from msabench.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit_:
        code = exit_.code
heavy = sorted(m for m in ("torch", "lightning", "pandas") if m in sys.modules)
print(json.dumps({"code": code, "err": err.getvalue(), "heavy": heavy}))
"""


def probe(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout)


RUN = ["run", "--method", "lf_dnn", "--protocol", "intra", "--rate", "0.3"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["run", "--method", "nosuch", "--protocol", "intra", "--rate", "0.3"], "unknown method 'nosuch'"),
        (["run", "--method", "lf_dnn", "--protocol", "intr", "--rate", "0.3"], "unknown protocol 'intr'"),
        (["run", "--method", "lf_dnn", "--protocol", "intra", "--rate", "1.5"], "out of range for intra"),
        (["run", "--method", "lf_dnn", "--protocol", "inter", "--condition", "xq"], "invalid condition"),
        ([*RUN, "--train-policy", "nope"], "unknown training policy 'nope'"),
        ([*RUN, "--dataset", "mosii"], "unknown dataset 'mosii'"),
        ([*RUN, "--seed", "-5"], "seed must be an integer from 0"),
        ([*RUN, "trainer.max_epoch=1"], "Did you mean 'trainer.max_epochs'?"),
        ([*RUN, "trainer.max_epochs=0"], "trainer.max_epochs must be an integer >= 1"),
        ([*RUN, "model.hidden_text=abc"], "model.hidden_text must be an integer"),
        ([*RUN, "--data-path", "/proc/no/such.pkl"], "does not exist"),
        ([*RUN, "--data-path", "/tmp"], "is a directory"),
        ([*RUN, "--output", "/proc/msabench/runs"], "cannot write into /proc"),
        ([*RUN, "--max-epochs", "0"], "argument --max-epochs: '0' is not an integer >= 1"),
    ],
)
def test_mistakes_are_refused_before_torch_loads(args: list[str], said: str) -> None:
    seen = probe(args)
    assert seen["code"] == 2, seen
    assert said in seen["err"] and seen["err"].count("\n") == 1, seen
    assert "torch" not in seen["heavy"] and "lightning" not in seen["heavy"], seen


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["leaderboard", "--results", "/etc/hostname", "--out", "lb.csv"], "is a file"),
        (["leaderboard", "--results", "/no/such/runs", "--out", "lb.csv"], "does not exist"),
        (["leaderboard", "--results", "/tmp", "--out", "lb.txt"], "ending in .csv"),
    ],
)
def test_leaderboard_mistakes_are_refused_before_pandas_loads(args: list[str], said: str) -> None:
    seen = probe(args)
    assert seen["code"] == 2 and said in seen["err"] and seen["err"].count("\n") == 1, seen
    assert seen["heavy"] == [], seen


def test_a_valid_run_is_checked_without_torch(tmp_path: Path) -> None:
    """What preflight checks of a valid run (a two-stage method, its stage blocks) passes, torch-free."""
    code = f"""
import sys
from msabench.config import preflight
flags = preflight.config_flags(seed=7)
out = preflight.check_run(method="IF-MMIN", protocol="inter", rate=2/3, condition=None, dataset="synthetic",
    train_policy="paper", data_path=None, data_root=None, output={str(tmp_path / "runs")!r}, flags=flags,
    overrides=["trainer.max_epochs_all=1"])
print(out[0], out[1].name, "torch" in sys.modules, "lightning" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["if_mmin", "inter@0.666667", "False", "False"]
    assert not (tmp_path / "runs").exists()


def test_every_builtin_method_names_the_config_and_schema_preflight_reads() -> None:
    for name in names():
        cls = get(name)
        found = builtin_config(name)
        assert found is not None, name
        path, schemas = found
        assert schemas == cls.schemas, name
        module_dir = Path(sys.modules[cls.__module__].__file__).parent
        assert Path(str(path)) == module_dir / (getattr(cls, "config_path", None) or "config.yaml"), name


def test_the_bound_of_inter_prints_so_that_a_refused_rate_is_visibly_above_it() -> None:
    with pytest.raises(ConfigError, match=r"rate 0\.6667 is out of range for inter: use 0 <= rate <= 2/3 "):
        preflight.make_setting("inter", 0.6667)
    assert preflight.make_setting("inter", 2 / 3).name == "inter@0.666667"


def test_a_misspelt_key_prints_the_suggestion_not_every_key() -> None:
    with pytest.raises(UnknownKeyError) as info:
        preflight.compose_config("lf_dnn", "synthetic", {}, ["optim.lrr=0.1"])
    message = str(info.value)
    assert message == (
        "unknown config key 'optim.lrr'. Did you mean 'optim.lr'? "
        "`msabench list keys --method lf_dnn` lists the valid keys."
    )


def test_max_epochs_caps_every_stage() -> None:
    cfg = preflight.compose_config("if_mmin", "synthetic", {}, ["trainer.max_epochs_all=2"])
    assert cfg is not None
    assert cfg.trainer.max_epochs == 2
    capped = {name: block.trainer.max_epochs for name, block in cfg.stages.items()}
    assert capped == {"pretrain": 2, "main": 2}
    plain = preflight.compose_config("if_mmin", "synthetic", {}, ["trainer.max_epochs=2"])
    assert plain is not None and plain.stages.pretrain.trainer.max_epochs == 4  # the synthetic block's


def test_list_keys_lists_every_key_with_its_value() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "msabench.cli", "list", "keys", "--method", "if_mmin"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert "  trainer.max_epochs = 8" in lines
    assert "  stages.pretrain.trainer.max_epochs = 4" in lines
    assert "  model.n_blocks = 5" in lines
    assert any(line.startswith("  trainer.max_epochs_all") for line in lines)
