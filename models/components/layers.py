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


class MaskedFeatureNorm(nn.Module):
    """BatchNorm over the kept frames of (B, L, D) sequences: each feature standardised, padding left out.

    Training batches are normalised with the mean and (biased) variance of their kept frames, and running
    statistics (unbiased variance, ``momentum`` as BatchNorm's) normalise evaluation batches, so at test time
    a sample's output depends on that sample alone. A training batch with at most one kept frame uses and
    keeps the running statistics. Everything is computed on the device: no data-dependent branch.
    Invalid frames come out as zeros; a valid frame the protocol dropped (zeroed) is normalised like any
    other but never counts as data, so the statistics do not depend on how many frames a policy drops.
    Within :func:`frozen_statistics` a training pass uses its batch's statistics without updating the
    running ones (a second view of the same batch must not count twice).

    Features are divided by ``std + eps``, as the ``train_zscore`` data option does, rather than by
    BatchNorm's ``sqrt(var + eps)``: with BatchNorm's eps of 1e-5, a raw feature whose standard deviation is
    1e-3 would come out with a spread of 0.3 instead of 1.
    """

    running_mean: Tensor
    running_var: Tensor

    def __init__(self, dim: int, momentum: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.updates_statistics = True
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def forward(self, x: Tensor, valid: Tensor, kept: Tensor | None = None) -> Tensor:
        """Normalise (B, L, D) ``x``.

        Args:
            x: the frames.
            valid: (B, L) bool, the frames that exist; the others come out as zeros.
            kept: (B, L) bool, the valid frames the protocol kept, the only ones the statistics are taken
                over; None: every valid frame.
        """
        mean, var = self.running_mean, self.running_var
        if self.training:
            data = (valid if kept is None else kept & valid).unsqueeze(-1).to(x.dtype)
            count = data.sum(dim=(0, 1))
            enough = count > 1
            batch_mean = (x * data).sum(dim=(0, 1)) / count.clamp_min(1.0)
            squares = ((x - batch_mean) ** 2 * data).sum(dim=(0, 1))
            mean = torch.where(enough, batch_mean, self.running_mean)
            var = torch.where(enough, squares / count.clamp_min(1.0), self.running_var)
            if self.updates_statistics:
                with torch.no_grad():
                    unbiased = torch.where(enough, squares / (count - 1).clamp_min(1.0), self.running_var)
                    self.running_mean.lerp_(mean.detach(), self.momentum)
                    self.running_var.lerp_(unbiased, self.momentum)
        std = (var + 1e-12).sqrt()  # finite gradient where a feature does not vary
        normalised = (x - mean) / (std + self.eps) * self.weight + self.bias
        return normalised * valid.unsqueeze(-1).to(x.dtype)


@contextmanager
def frozen_statistics(module: nn.Module) -> Iterator[None]:
    """Leave the running statistics of every :class:`MaskedFeatureNorm` in ``module`` as they are.

    For a second pass over another view of a training batch (a complete-view target): the statistics used at
    test time then come from one view only, the one the method is trained to predict from.
    """
    norms = [m for m in module.modules() if isinstance(m, MaskedFeatureNorm)]
    for norm in norms:
        norm.updates_statistics = False
    try:
        yield
    finally:
        for norm in norms:
            norm.updates_statistics = True


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


def window_strides(lengths: tuple[int, ...] | None, max_len: int | None, count: int = 3) -> tuple[int, ...]:
    """Per modality, the window that brings its padded length to at most ``max_len`` steps (1: none).

    Raises:
        ValueError: ``max_len`` without the ``count`` padded lengths it needs.
    """
    if max_len is None:
        return (1,) * count
    if lengths is None:
        raise ValueError("max_len needs the padded lengths of the modalities")
    return tuple(max(1, math.ceil(n / max_len)) for n in lengths)


def window_mean(x: Tensor, valid: Tensor, stride: int) -> Tensor:
    """Average (B, T, D) over non-overlapping windows of ``stride`` steps -> (B, ceil(T / stride), D).

    Each window averages its valid steps; dropped steps inside them count as the zeros they are, as they
    would for any temporal filter on zero-filled input. Padding is zeroed whatever it held (stride 1
    included), so the convolution that follows never reads it.
    """
    x = x * valid[..., None].to(x.dtype)
    if stride == 1:
        return x
    pad = -x.shape[1] % stride
    total = F.pad(x, (0, 0, 0, pad)).view(x.shape[0], -1, stride, x.shape[2]).sum(dim=2)
    count = F.pad(valid, (0, pad)).view(x.shape[0], -1, stride).sum(dim=2, keepdim=True)
    return total / count.clamp_min(1).to(x.dtype)


def window_any(mask: Tensor, stride: int) -> Tensor:
    """A (B, T) mask reduced over the windows of :func:`window_mean`: True where any step of the window is."""
    if stride == 1:
        return mask
    pad = -mask.shape[1] % stride
    return F.pad(mask, (0, pad)).view(mask.shape[0], -1, stride).any(dim=2)
