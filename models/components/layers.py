"""Small layers shared by several methods."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm that normalises a training batch with a single value per channel by its running statistics.

    The training loader keeps the last, smaller batch (drop_last False, as MMSA and the released codes do),
    and a final batch of one sample would make BatchNorm raise in training mode. Such a batch is normalised
    like an evaluation batch, and the statistics are not updated.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.numel() // x.shape[1] <= 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


_ACCELERATOR_PATHS_ON_CPU = False


def gathers_cheaply(device: torch.device) -> bool:
    """Whether a gather with a data-dependent shape (``nonzero``, boolean indexing) is free on ``device``.

    On the CPU it costs nothing and lets a layer skip work on steps nobody reads; on an accelerator the host
    would wait for the device to learn the shape, every step. Layers that branch on this give the same values
    on either path. Inside :func:`accelerator_paths` it is False everywhere.
    """
    return device.type == "cpu" and not _ACCELERATOR_PATHS_ON_CPU


@contextmanager
def accelerator_paths() -> Iterator[None]:
    """Take the accelerator's side of every :func:`gathers_cheaply` branch, on the CPU too.

    For checking, without a GPU, that the code a GPU runs makes no host synchronisation.
    """
    global _ACCELERATOR_PATHS_ON_CPU
    saved, _ACCELERATOR_PATHS_ON_CPU = _ACCELERATOR_PATHS_ON_CPU, True
    try:
        yield
    finally:
        _ACCELERATOR_PATHS_ON_CPU = saved


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """The Transformer's sinusoidal position table, (length, dim)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div[: dim // 2])
    return table


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over time of (B, T, D) over the True positions of ``mask`` (B, T); all positions when None.

    A sequence with no True position pools to zeros (a wholly missing modality), never NaN.
    """
    if mask is None:
        return x.mean(dim=1)
    weight = mask.unsqueeze(-1).to(x.dtype)
    return (x * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1.0)


class MLP(nn.Sequential):
    """Linear -> activation -> dropout -> Linear, the two-layer block most heads and experts use."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        dropout: float = 0.0,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__(
            nn.Linear(in_dim, hidden), activation(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
        )
