"""The `quick` and `synthetic` presets: every method trains with the `quick:` (`reference:`) block of its
config, and its runs record it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from msabench import config as config_lib
from msabench import sweep as sw
from msabench.errors import UnknownNameError
from msabench.models import names
from msabench.runner import execute, prepare
from msabench.runner.request import dataset_family


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf of a nested mapping."""
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}{key}."))
    return out


PRESET_BLOCKS = [("quick", "quick"), ("synthetic", "reference")]


@pytest.mark.parametrize("block_name", ["quick", "reference"])
def test_every_method_has_the_block(block_name: str) -> None:
    for method in names():
        block = config_lib.load_method_config(method).get(block_name)
        assert block, f"{method}'s config.yaml has no `{block_name}:` block"


@pytest.mark.parametrize(("preset", "block_name"), PRESET_BLOCKS)
def test_the_preset_trains_every_method_with_its_block(preset: str, block_name: str) -> None:
    spec = sw.build_spec(preset)
    assert spec.blocks == (block_name,)
    jobs = sw.expand(spec)
    assert {job.method for job in jobs} == set(names())
    assert all(job.extra_blocks == (block_name,) for job in jobs)
    one_per_config = {(job.method, job.train_policy): job for job in jobs}  # a (method, policy) shares one
    for job in one_per_config.values():
        args = (job.method, job.dataset, dataset_family(job.dataset), {}, list(job.overrides))
        budget = config_lib.compose(*args, job.extra_blocks)
        plain = config_lib.compose(*args)
        block = OmegaConf.to_container(config_lib.load_method_config(job.method)[block_name])
        for key, value in _leaves(block).items():
            assert OmegaConf.select(budget, key) == value, f"{job.label}: {key}"
        assert config_lib.config_hash(budget) != config_lib.config_hash(plain), job.label
        # The block is a budget: it is not merged into the method's body, so a run without it is unchanged.
        assert block_name not in plain and "smoke" not in plain


def test_a_sweep_file_names_known_blocks_only(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("grid: {methods: lf_dnn, rates: '0'}\nblocks: [quick, smoke]\n")
    assert sw.build_spec(good).blocks == ("quick", "smoke")
    assert sw.expand(sw.build_spec(good))[0].extra_blocks == ("quick", "smoke")
    bad = tmp_path / "typo.yaml"
    bad.write_text("grid: {methods: lf_dnn, rates: '0'}\nblocks: [quik]\n")
    with pytest.raises(UnknownNameError, match="Did you mean 'quick'"):
        sw.build_spec(bad)


def test_a_quick_run_records_its_budget_and_has_its_own_key(tmp_path: Path) -> None:
    (job,) = sw.expand(sw.build_spec("quick", {"methods": "lf_dnn", "rates": "0", "conditions": []}))
    # A short run: tiny widths and data, two epochs; the quick block's batch size is what is checked.
    fast = ("data.options.n_scale=0.05", "trainer.max_epochs=2", "trainer.patience=null")
    job = dataclasses.replace(
        job, overrides=(*job.overrides, *fast), extra_blocks=(*job.extra_blocks, "smoke")
    )
    quick_batch = config_lib.load_method_config("lf_dnn").quick.data.batch_size
    frame = execute(job.request(tmp_path / "runs"))
    saved = OmegaConf.load(Path(frame.attrs["run_dir"]) / "config.yaml")
    assert saved.data.batch_size == quick_batch
    without = prepare(dataclasses.replace(job, extra_blocks=("smoke",)).request(tmp_path / "runs"))
    assert without.cfg.data.batch_size != quick_batch
    assert without.run_dir != Path(frame.attrs["run_dir"])
