"""Fake splits for the protocol tests: per-sample rows, so any batch is a gather of split rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

SHAPES = {"text": (12, 4), "audio": (15, 3), "vision": (9, 2)}  # (L_m, D_m), small but unaligned


class FakeSplit:
    """A split of ``size`` samples with random valid lengths (>= 1), features and BERT-style id triplets."""

    def __init__(self, size: int, seed: int = 0, text_ids: bool = True) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.size = size
        self.rows: dict[str, Tensor] = {}
        for modality, (length, dim) in SHAPES.items():
            lengths = torch.randint(1, length + 1, (size,), generator=gen)
            valid = torch.arange(length)[None, :] < lengths[:, None]
            self.rows[f"{modality}_valid"] = valid
            # strictly non-zero features, so a zero in the output can only come from the protocol
            self.rows[modality] = (torch.rand(size, length, dim, generator=gen) + 0.5) * valid[..., None]
        if text_ids:
            valid = self.rows["text_valid"]
            ids = (
                torch.randint(101, 30000, valid.shape, generator=gen) * valid
            )  # never 100 ([UNK]) or 0 inside
            segments = torch.zeros_like(ids)
            self.rows["text_ids"] = torch.stack([ids, valid.long(), segments], dim=1)
        self.rows["label"] = torch.rand(size, generator=gen) * 6 - 3
        self.rows["index"] = torch.arange(size)

    def batch(self, rows: Tensor | None = None) -> dict[str, Tensor]:
        """The batch of the given split rows (all rows, in order, by default)."""
        if rows is None:
            rows = torch.arange(self.size)
        return {key: value[rows] for key, value in self.rows.items()}


@pytest.fixture
def make_split() -> Callable[..., FakeSplit]:
    return FakeSplit
