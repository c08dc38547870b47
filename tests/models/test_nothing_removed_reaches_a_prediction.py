"""The benchmark's guarantee, for every registered method: what a protocol removes never reaches a prediction.

The check (``msabench.testing.leakage``) changes everything each protocol point removes in a test batch and
asserts that the prediction of an untrained model does not move; the same check on the stored text view must
see the change, so it is known to detect a leak. No method is named here; ``msabench check --method NAME``
runs the same checks against a method from outside msabench.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from msabench import testing
from msabench.models import names


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.mark.parametrize("dataset", testing.LEAKAGE_DATASETS)
@pytest.mark.parametrize("method", names())
def test_nothing_removed_reaches_a_prediction(method: str, dataset: str, root: Path) -> None:
    testing.check_nothing_removed_reaches_a_prediction(method, dataset, root)


@pytest.mark.parametrize("method", names())
def test_the_stored_text_view_is_seen_to_leak(method: str, root: Path) -> None:
    testing.check_stored_text_view_is_seen_to_leak(method, root)
