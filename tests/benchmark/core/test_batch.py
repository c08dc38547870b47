"""The batch contract's accessors."""

from __future__ import annotations

import pytest
import torch

from msabench.core.batch import dropped_steps


def test_dropped_steps_are_the_complete_views_steps_the_missing_view_did_not_keep() -> None:
    valid_full = torch.tensor([[True, True, True, False], [True, True, False, False]])
    batch = {
        "audio_full": torch.zeros(2, 4, 1),
        "audio_valid_full": valid_full,
        # Sample 1 lost audio altogether: its missing view has no valid position, nothing kept.
        "audio_valid": torch.tensor([[True, True, True, False], [False, False, False, False]]),
        "audio_keep": torch.tensor([[True, False, True, False], [False, False, False, False]]),
    }
    expected = torch.tensor([[False, True, False, False], [True, True, False, False]])
    assert torch.equal(dropped_steps(batch, "audio"), expected)  # type: ignore[arg-type]


def test_dropped_steps_need_the_complete_view() -> None:
    batch = {
        "audio_valid": torch.ones(1, 2, dtype=torch.bool),
        "audio_keep": torch.ones(1, 2, dtype=torch.bool),
    }
    with pytest.raises(KeyError, match="only training batches"):
        dropped_steps(batch, "audio")  # type: ignore[arg-type]
