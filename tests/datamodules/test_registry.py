"""The dataset registry: names, metric families, config blocks, one-line errors, datasets from outside."""

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from msabench.config import dataset_blocks
from msabench.datamodules import (
    DATASETS,
    build_datamodule,
    dataset_names,
    get_dataset,
    register_dataset,
    registry,
)
from msabench.datamodules.registry import DataFile, DatasetSpec
from msabench.datamodules.synthetic import RECIPES, SyntheticDataModule
from msabench.errors import ConfigError, PluginError, UnknownNameError
from msabench.runner import dataset_family

FAKE = Path(__file__).parents[1] / "data" / "make_fake_data.py"
_spec = importlib.util.spec_from_file_location("make_fake_data", FAKE)
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)

FAMILIES = {
    "mosi": "mosi",
    "mosei": "mosi",
    "sims": "sims",
    "iemocap": "iemocap",
    "synthetic": "mosi",
    "synthetic-mosei": "mosi",
    "synthetic-sims": "sims",
    "synthetic-iemocap": "iemocap",
}


def test_every_dataset_carries_its_metric_family_and_datamodule():
    assert set(dataset_names()) == set(FAMILIES) == set(DATASETS)
    for name, family in FAMILIES.items():
        spec = get_dataset(name.upper())
        assert spec.name == name and spec.metric_family == family == dataset_family(name)
        assert spec.synthetic == (name in RECIPES)
        if spec.synthetic:  # the generated variant's labels follow the family it is registered with
            assert RECIPES[name].metric_family == family
        assert spec.default_variant in spec.files or spec.synthetic
    assert get_dataset("mosi").datamodule_class().__name__ == "MMSADataModule"
    assert get_dataset("synthetic-sims").datamodule_class() is SyntheticDataModule
    assert get_dataset("iemocap").datamodule_class().__name__ == "IEMOCAPDataModule"


def test_config_blocks_follow_the_paper_dataset():
    assert dataset_blocks("mosei", "mosi") == ["mosi", "mosei"]
    assert dataset_blocks("synthetic-mosei", "mosi") == ["mosi", "mosei", "synthetic", "synthetic-mosei"]
    assert dataset_blocks("synthetic", "mosi") == ["mosi", "synthetic"]
    assert dataset_blocks("synthetic-iemocap", "iemocap") == ["iemocap", "synthetic", "synthetic-iemocap"]


@pytest.mark.parametrize("lookup", [get_dataset, dataset_family, lambda name: dataset_blocks(name, "mosi")])
def test_an_unknown_name_is_one_line_listing_the_datasets(lookup):
    with pytest.raises(UnknownNameError, match="unknown dataset 'synthetic-mosi'") as info:
        lookup("synthetic-mosi")
    message = str(info.value)
    assert "\n" not in message and all(name in message for name in FAMILIES)


def test_a_dataset_registered_from_outside_is_built_and_read_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", registry._REGISTRY.copy())
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    fake.make_mmsa(tmp_path / "data" / "MINE" / "features.pkl")
    files = {"unaligned": DataFile("MINE/features.pkl")}  # no published hash: nothing to warn about
    spec = DatasetSpec("my-mosi", "msabench.datamodules.mmsa:MMSADataModule", "mosi", "mosi", files=files)
    register_dataset(spec)
    assert register_dataset(spec) is spec  # registering the same spec again is harmless
    with pytest.raises(ValueError, match="registered twice"):
        register_dataset(DatasetSpec("MY-MOSI", spec.datamodule, "sims", "sims"))
    assert dataset_family("My-MOSI") == "mosi" and dataset_blocks("my-mosi", "mosi") == ["mosi", "my-mosi"]
    dm = build_datamodule(
        "My-Mosi", data_root=tmp_path / "data", train_policy=None, validation=[], test=[], seed=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unpublished file of a dataset without published ones is quiet
        dm.setup()
    assert dm.name == "my-mosi" and dm.dims.metric_family == "mosi" and dm.split_sizes["train"] > 0
    with pytest.raises(ConfigError, match="my-mosi has no 'aligned' variant: use one of unaligned"):
        build_datamodule("my-mosi", variant="aligned", train_policy=None, validation=[], test=[], seed=0)


def test_reading_the_registry_loads_neither_torch_nor_lightning():
    code = (
        "import sys, msabench.datamodules as d; d.get_dataset('mosei'); d.dataset_names();"
        "print(sorted(m for m in ('torch', 'lightning', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _install_dataset_package(site: Path, entry: str, module_text: str) -> None:
    """An installed distribution declaring ``entry`` under the ``msabench.datasets`` entry-point group."""
    (site / f"{entry.split('= ')[1].split(':')[0]}.py").write_text(module_text)
    info = site / "my_data-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-data\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{entry}\n")


def test_an_installed_package_adds_a_dataset_through_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _install_dataset_package(
        site,
        "my-sims = my_data_sims:SPEC",
        "from msabench.datamodules.registry import DataFile, DatasetSpec\n"
        "SPEC = DatasetSpec('my-sims', 'msabench.datamodules.mmsa:MMSADataModule', 'sims', 'sims',\n"
        "                   files={'unaligned': DataFile('MINE/sims.pkl')})\n",
    )
    monkeypatch.syspath_prepend(str(site))
    fresh = registry.Registry("dataset", entry_point_group=registry.ENTRY_POINT_GROUP)
    for name in registry.dataset_names(installed=False):
        fresh.add(name, registry.get_dataset(name))
    monkeypatch.setattr(registry, "_REGISTRY", fresh)
    monkeypatch.setenv("MSABENCH_CACHE", str(tmp_path / "cache"))
    fake.make_mmsa(tmp_path / "data" / "MINE" / "sims.pkl", sims=True)

    assert "my-sims" not in registry.dataset_names(installed=False)
    assert registry.dataset_names()[-1] == "my-sims"  # after the built-in ones
    assert dataset_family("MY-SIMS") == "sims" and dataset_blocks("my-sims", "sims") == ["sims", "my-sims"]
    dm = build_datamodule(
        "my-sims", data_root=tmp_path / "data", train_policy=None, validation=[], test=[], seed=0
    )
    dm.setup()
    assert dm.name == "my-sims" and dm.dims.metric_family == "sims" and dm.split_sizes["train"] > 0


@pytest.mark.parametrize(
    ("entry", "module_text", "said"),
    [
        (
            "broken = my_data_broken:SPEC",
            "raise ImportError('no module named h5py')\n",
            "failed to load: ImportError",
        ),
        (
            "other = my_data_other:SPEC",
            "from msabench.datamodules.registry import DatasetSpec\n"
            "SPEC = DatasetSpec('mine', 'm:C', 'mosi', 'mosi')\n",
            "is not a DatasetSpec named 'other'",
        ),
    ],
)
def test_a_broken_installed_dataset_is_one_line(tmp_path, monkeypatch, entry, module_text, said):
    site = tmp_path / "site"
    site.mkdir()
    _install_dataset_package(site, entry, module_text)
    monkeypatch.syspath_prepend(str(site))
    fresh = registry.Registry("dataset", entry_point_group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "_REGISTRY", fresh)
    name = entry.split(" =")[0]
    with pytest.raises(PluginError, match=said) as info:
        get_dataset(name)
    assert "\n" not in str(info.value)
