"""Every method's typed ``model``, ``loss`` and ``optim`` blocks: they accept the method's own config, change
no run key, and refuse a value of the wrong type or an unknown key in one line, before anything is written.

A method's schemas are its ``schemas`` (the dataclasses of its ``config.py``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from msabench import config as config_lib
from msabench.cli import main
from msabench.config.schema import expected_type
from msabench.datamodules import DATASETS
from msabench.errors import ConfigError
from msabench.models import get
from msabench.models.base import MSAMethod
from msabench.models.schema import BlockSchemas, LossConfig, OptimConfig, TextEncoderConfig
from msabench.runner import dataset_family

SHIPPED = ("lf_dnn", "mmin", "if_mmin", "mitr_dnet", "umdf", "derl")
# The first field of each scalar type that a wrong value is tried on, and the value tried.
WRONG = {"an integer": "wide", "a number": "abc", "true or false": "maybe"}


def test_every_shipped_method_types_its_model_and_loss_blocks() -> None:
    for name in SHIPPED:
        schemas = get(name).schemas
        assert schemas.model is not None and schemas.loss is not None, name
        assert issubclass(schemas.loss, LossConfig), name
        assert schemas.optim is None or issubclass(schemas.optim, OptimConfig), name
    # The keys a method adds to `optim` (MITR-DNet's per-group learning rates) are typed as well.
    assert get("mitr_dnet").schemas.optim is not None


@pytest.mark.parametrize("name", SHIPPED)
def test_the_schemas_type_the_method_config_without_changing_it(name: str) -> None:
    schemas = get(name).schemas
    for dataset in DATASETS:
        for extra in ((), ("smoke",), ("quick",), ("reference",)):
            family = dataset_family(dataset)
            plain = config_lib.compose(name, dataset, family, {}, [], extra)
            typed = config_lib.compose(name, dataset, family, {}, [], extra, schemas)
            for block, schema in schemas.items():
                assert OmegaConf.get_type(typed, block) is schema
            # Same values, same order: the schemas move neither the saved config nor the run key.
            assert OmegaConf.to_yaml(typed) == OmegaConf.to_yaml(plain)
            assert config_lib.config_hash(typed) == config_lib.config_hash(plain)


SHARED = {"model": TextEncoderConfig, "loss": LossConfig, "optim": OptimConfig}


def _own_fields(block: str, schema: type) -> list[str]:
    """The keys the method adds to ``block`` (its widths, its loss weights, its group learning rates)."""
    shared = {f.name for f in dataclasses.fields(SHARED[block])}
    return [f.name for f in dataclasses.fields(schema) if f.name not in shared]


def _wrong_values(name: str) -> list[tuple[str, str, str]]:
    """(dotted key, wrong value, expected words): one key the method adds per block and scalar type."""
    schemas = get(name).schemas
    cfg = config_lib.compose(name, "synthetic", "mosi", {}, [], (), schemas)
    tries = []
    for block, schema in schemas.items():
        seen = set()
        for key in _own_fields(block, schema):
            words = expected_type(cfg[block], key)
            if words in WRONG and words not in seen:
                seen.add(words)
                tries.append((f"{block}.{key}", WRONG[words], words))
    return tries


@pytest.mark.parametrize("name", SHIPPED)
def test_a_wrong_value_in_any_typed_block_is_one_line(name: str) -> None:
    schemas = get(name).schemas
    tries = _wrong_values(name)
    # Every block that adds a key of its own has one refused: the loss weights included, not only the widths.
    assert {key.split(".")[0] for key, _, _ in tries} == {b for b, s in schemas.items() if _own_fields(b, s)}
    for key, value, words in tries:
        block = key.split(".")[0]
        with pytest.raises(ConfigError) as caught:
            config_lib.compose(name, "synthetic", "mosi", {}, [f"{key}={value}"], (), schemas)
        assert (
            str(caught.value)
            == f"{name}'s {block} block: {key} must be {words}, not '{value}' (fix the value)"
        )
    with pytest.raises(ConfigError, match=r"unknown key: loss\.regressionx"):
        config_lib.compose(name, "synthetic", "mosi", {}, ["+loss.regressionx=1"], (), schemas)


@pytest.mark.parametrize(
    ("method", "override", "said"),
    [
        ("mitr_dnet", "loss.kd_weight=abc", "loss.kd_weight must be a number, not 'abc'"),
        ("umdf", "loss.bidirectional=maybe", "loss.bidirectional must be true or false, not 'maybe'"),
        ("derl", "loss.cmd_moments=1.5", "loss.cmd_moments must be an integer, not '1.5'"),
        ("mitr_dnet", "optim.lr_audio=fast", "optim.lr_audio must be a number, not 'fast'"),
    ],
)
def test_the_command_refuses_a_mistyped_method_key_before_writing_anything(
    method: str, override: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: MITR-DNet trained and died in its first loss with a 109-line traceback, leaving a failed run
    # directory; UMDF took 'maybe' for true and trained.
    root = tmp_path / "runs"
    code = main(
        ["run", "--method", method, "--protocol", "intra", "--rate", "0.3", "--output", str(root), override]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and said in err, err
    assert not root.exists()


def test_a_method_still_declaring_config_schema_is_told_what_replaced_it() -> None:
    with pytest.raises(TypeError, match=r"declare `schemas = BlockSchemas\(model=ModelConfig"):

        class Old(MSAMethod):  # noqa: F841 - the class statement is what raises
            config_schema = LossConfig

    assert BlockSchemas(loss=LossConfig).items() == [("loss", LossConfig)]


@pytest.mark.parametrize(
    ("method", "override", "said"),
    [
        (
            "lf_dnn",
            "model.av_pool=kept_mean",
            "model.av_pool must be one of padded_mean, valid_mean, not 'kept_mean'",
        ),
        ("umdf", "model.num_heads=3", "model.dim=40 is not divisible by model.num_heads=3"),
        (
            "umdf",
            "model.dfim_anchor=words",
            "model.dfim_anchor must be one of text, audio, vision, not 'words'",
        ),
    ],
)
def test_the_model_dataclass_checks_its_values_when_the_config_is_composed(
    method: str, override: str, said: str
) -> None:
    # The check lives in the dataclass (config.py), so it runs before torch loads and before any write.
    with pytest.raises(ConfigError) as caught:
        config_lib.compose(method, "mosi", "mosi", {}, [override], (), get(method).schemas)
    assert str(caught.value) == said
