"""Config composition: merge order, typed blocks, and one line for a wrong type or an unknown key."""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

from msabench.config import composition as config_lib
from msabench.config.schema import RunConfig
from msabench.errors import ConfigError, UnknownNameError
from msabench.runner import RunRequest, check_request, make_setting


def _compose(dataset: str = "synthetic", flags: dict[str, Any] | None = None, overrides: tuple = ()) -> Any:
    family = "sims" if "sims" in dataset else "mosi"
    return config_lib.compose("lf_dnn", dataset, family, flags or {}, list(overrides))


def _fake_method_config(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(config_lib, "load_method_config", lambda method: OmegaConf.create(text))
    monkeypatch.setattr(config_lib, "_config_name", lambda method: f"{method}/config.yaml")


METHOD = """
method: {paper_policy: complete}
data: {batch_size: 128}
trainer: {max_epochs: 200}
loss: {regression: l1, my_weight: 0.5}
model: {width: 4}
datasets:
  mosi: {data: {batch_size: 48}, trainer: {max_epochs: 30}}
  synthetic: {data: {batch_size: 32}}
smoke: {data: {batch_size: 8}}
"""


def test_merge_order_is_defaults_method_dataset_blocks_flags_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_method_config(monkeypatch, METHOD)

    def batch(dataset: str, family: str = "mosi", **kwargs: Any) -> int:
        return config_lib.compose("m", dataset, family, **kwargs).data.batch_size

    assert config_lib.load_defaults().data.batch_size == 64
    assert batch("sims", "sims") == 128  # the method's top level: it has no sims block
    assert batch("mosei") == 48  # the family's block (mosi for MOSEI)
    assert batch("mosi") == 48  # the family's block
    assert batch("synthetic") == 32  # mosi, then synthetic: the later block wins
    assert batch("synthetic", extra_blocks=("smoke",)) == 8  # extra blocks after the dataset's
    assert batch("synthetic", flags={"data.batch_size": 16}, extra_blocks=("smoke",)) == 16
    assert batch("synthetic", flags={"data.batch_size": 16}, overrides=["data.batch_size=4"]) == 4
    cfg = config_lib.compose("m", "synthetic", "mosi")
    assert (cfg.trainer.max_epochs, cfg.trainer.patience) == (30, 8)  # untouched keys keep the defaults
    assert cfg.loss.my_weight == 0.5 and cfg.model.width == 4  # a method adds keys of its own
    assert cfg.method.name == "m" and cfg.dataset == "synthetic" and OmegaConf.is_readonly(cfg)


def test_every_default_is_typed_and_the_schema_matches_the_yaml() -> None:
    defaults = config_lib.load_defaults()
    assert OmegaConf.get_type(defaults) is RunConfig
    assert OmegaConf.missing_keys(defaults) == {"method.name"}  # set by compose
    yaml_keys = set(_leaves(OmegaConf.to_container(OmegaConf.create(_defaults_text()))))
    assert set(_leaves(OmegaConf.to_container(defaults))) == yaml_keys


def _defaults_text() -> str:
    from importlib import resources

    return resources.files("msabench").joinpath("configs/defaults.yaml").read_text()


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [leaf for k, v in node.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_values_arrive_typed() -> None:
    cfg = _compose(overrides=("optim.lr=1", "trainer.max_epochs=3", "trainer.limit_train_batches=2"))
    assert type(cfg.optim.lr) is float and cfg.optim.lr == 1.0
    assert type(cfg.trainer.max_epochs) is int
    assert type(cfg.trainer.limit_train_batches) is int  # untyped: an int limit counts batches


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=ten", "trainer.max_epochs must be an integer, not 'ten'"),
        ("seed=1.5", "seed must be an integer, not '1.5'"),
        ("trainer.patience=soon", "trainer.patience must be an integer or null, not 'soon'"),
        ("optim.lr=fast", "optim.lr must be a number, not 'fast'"),
        ("logging.csv=maybe", "logging.csv must be true or false, not 'maybe'"),
        ("data.batch_size=null", "data.batch_size must be an integer, not null"),
        ("+trainer.max_epoch=3", "sets an unknown key: trainer.max_epoch"),
    ],
)
def test_a_wrong_type_or_key_in_an_override_is_one_line(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _compose(overrides=(override,))
    text = str(caught.value)
    assert message in text and f"override '{override}'" in text and "\n" not in text


def test_an_unknown_override_key_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'trainer.max_epochs'"):
        _compose(overrides=("trainer.max_epoch=3",))


def test_a_wrong_type_in_a_method_config_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_method_config(monkeypatch, "trainer: {max_epochs: many}\ndatasets: {}")
    with pytest.raises(ConfigError) as caught:
        config_lib.compose("m", "synthetic", "mosi")
    assert (
        str(caught.value)
        == "m/config.yaml: trainer.max_epochs must be an integer, not 'many' (fix the value)"
    )


def test_an_unknown_key_in_a_dataset_block_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_method_config(monkeypatch, "datasets: {mosi: {trainer: {max_epoch: 3}}}")
    with pytest.raises(ConfigError) as caught:
        config_lib.compose("m", "mosi", "mosi")
    assert str(caught.value) == (
        "the `datasets.mosi` block of m/config.yaml sets an unknown key: trainer.max_epoch "
        "(remove it or fix its spelling)"
    )


def test_a_stage_block_is_typed_as_the_run() -> None:
    request = RunRequest(
        method="mmin",
        settings=[make_setting("intra", 0.3)],
        overrides=["stages.pretrain.trainer.max_epochs=two"],
    )
    with pytest.raises(ConfigError, match=r"stages.pretrain block: trainer.max_epochs must be an integer"):
        check_request(request)


def test_free_form_blocks_stay_open() -> None:
    cfg = _compose(overrides=("policy.p_modality=0.2", "data.options.n_scale=0.5"))
    assert cfg.policy.p_modality == 0.2 and cfg.data.options.n_scale == 0.5


def test_non_determining_keys_do_not_change_the_hash() -> None:
    base = config_lib.config_hash(_compose())
    assert config_lib.config_hash(_compose(overrides=("data.num_workers=2", "logging.csv=false"))) == base
    assert config_lib.config_hash(_compose(flags={"data.root": "/elsewhere"})) == base
    assert config_lib.config_hash(_compose(overrides=("trainer.max_epochs=3",))) != base
    assert config_lib.config_hash(_compose(flags={"seed": 7})) != base
