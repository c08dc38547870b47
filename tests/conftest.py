"""Shared fixtures: tiny synthetic data in a private cache.

Tests never touch a user's cache or real data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["MSABENCH_CACHE"] = str(tmp_path_factory.mktemp("msabench-cache"))
    os.environ.pop("MSABENCH_DATA", None)
    os.environ["WANDB_MODE"] = "disabled"
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def tiny_bert(fake_data: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny local BERT matching the fake MMSA files' text width (tests/data/make_fake_data.py)."""
    return fake_data.make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def fake_data() -> Any:
    """The fake-data writers of ``tests/data/make_fake_data.py`` as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_fake_data", Path(__file__).parent / "data" / "make_fake_data.py"
    )
    assert spec is not None and spec.loader is not None
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    return fake


@pytest.fixture(scope="session")
def fake_mosi(fake_data: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MOSI-format pickle (6 train, 3 valid, 4 test samples)."""
    return fake_data.make_mmsa(tmp_path_factory.mktemp("fake-mosi") / "mosi.pkl")
