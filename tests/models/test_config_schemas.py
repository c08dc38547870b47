"""Every method's typed ``model`` block: it accepts the method's own config, changes no run key, and refuses a
value of the wrong type or an unknown key in one line.

A method's schema is its ``config_schema``, or the ``ModelConfig`` of its ``config.py`` until it declares one.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest
from omegaconf import OmegaConf

from msabench import config as config_lib
from msabench.config_schema import expected_type
from msabench.datamodules import DATASETS
from msabench.errors import ConfigError
from msabench.models import get, names
from msabench.runner import dataset_family


def _schema(name: str) -> type | None:
    method_cls = get(name)
    if method_cls.config_schema is not None:
        return method_cls.config_schema
    try:
        return importlib.import_module(f"{method_cls.__module__.rsplit('.', 1)[0]}.config").ModelConfig
    except ModuleNotFoundError:
        return None


SCHEMAS = {name: schema for name in names() if (schema := _schema(name)) is not None}


def test_every_shipped_method_has_a_schema() -> None:
    assert set(SCHEMAS) >= {"lf_dnn", "mmin", "if_mmin", "mitr_dnet", "umdf", "derl"}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_schema_types_the_method_config_without_changing_it(name: str) -> None:
    schema = SCHEMAS[name]
    for dataset in DATASETS:
        for extra in ((), ("smoke",)):
            plain = config_lib.compose(name, dataset, dataset_family(dataset), {}, [], extra)
            typed = config_lib.compose(
                name, dataset, dataset_family(dataset), {}, [], extra, model_schema=schema
            )
            assert OmegaConf.get_type(typed, "model") is schema
            # Same values, same order: attaching the schema moves neither the saved config nor the run key.
            assert OmegaConf.to_yaml(typed) == OmegaConf.to_yaml(plain)
            assert config_lib.config_hash(typed) == config_lib.config_hash(plain)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_a_wrong_model_value_is_one_line(name: str) -> None:
    schema = SCHEMAS[name]
    cfg = config_lib.compose(name, "synthetic", "mosi", model_schema=schema)
    typed = [f.name for f in dataclasses.fields(schema) if expected_type(cfg.model, f.name) == "an integer"]
    key = typed[0]
    with pytest.raises(ConfigError) as caught:
        config_lib.compose(name, "synthetic", "mosi", {}, [f"model.{key}=wide"], model_schema=schema)
    assert str(caught.value) == (
        f"{name}'s model block: model.{key} must be an integer, not 'wide' (fix the value)"
    )
    with pytest.raises(ConfigError, match=rf"unknown key: model\.{key}x"):
        config_lib.compose(name, "synthetic", "mosi", {}, [f"+model.{key}x=1"], model_schema=schema)
