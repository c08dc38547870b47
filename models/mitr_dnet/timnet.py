"""MITR-DNet's MIB-TRL: TIMNET, a bidirectional network of gated dilated causal convolutions."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.models.components.layers import BatchNorm1d


class CausalConvUnit(nn.Module):
    """Left-padded (causal) Conv1d, BatchNorm, ReLU, Dropout on (B, C, T)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float
    ) -> None:
        super().__init__()
        self.pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
        self.norm = BatchNorm1d(out_channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        # Left padding only is what the released code's symmetric padding plus right trim amounts to.
        return self.dropout(F.relu(self.norm(self.conv(F.pad(x, (self.pad, 0))))))


class TemporalAwareBlock(nn.Module):
    """Gated dilated causal block: x + Conv1x1(tanh(A(x)) * sigmoid(B(x))).

    A and B are causal conv units, so both end in a ReLU: the gate's factors lie in [0, 1) and [0.5, 1), as in
    the released code.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.tanh_branch = CausalConvUnit(channels, channels, kernel_size, dilation, dropout)
        self.sigmoid_branch = CausalConvUnit(channels, channels, kernel_size, dilation, dropout)
        self.skip = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.tanh(self.tanh_branch(x)) * torch.sigmoid(self.sigmoid_branch(x))
        return x + self.skip(gate)


class TIMNet(nn.Module):
    """Bidirectional temporal-aware network (MIB-TRL): (B, T, D) -> (B, T, filters x len(dilations)).

    A forward and a backward stream (each a 1x1 causal conv unit) go through the same temporal-aware blocks;
    after block k the streams are summed, and the sums of all blocks are concatenated on channels.

    Args:
        in_channels: input width.
        filters: channels of each stream (25).
        kernel_size: kernel of the dilated convolutions (2).
        dilations: one block per dilation (1, 2, 4, 8).
        dropout: dropout of every conv unit (0.01).
        flip_axis: what the backward stream reverses. ``channel``: the feature channels, as the released code
            does (it flips dim 1 of the (B, C, T) tensor); before a learned 1x1 convolution that is only a
            permutation of its weights, so both streams are forward-causal. ``time``: the time axis, as TIMNET
            does; the backward stream is flipped back before the sum so that step t combines a causal view of
            the past and one of the future (TIMNET pools right away and never needs the flip back; here the
            reconstruction heads read every step).
    """

    def __init__(
        self,
        in_channels: int,
        filters: int = 25,
        kernel_size: int = 2,
        dilations: tuple[int, ...] = (1, 2, 4, 8),
        dropout: float = 0.01,
        flip_axis: str = "channel",
    ) -> None:
        super().__init__()
        if flip_axis not in ("channel", "time"):
            raise ValueError(f"flip_axis must be channel or time, not '{flip_axis}'")
        self.flip_axis = flip_axis
        self.forward_unit = CausalConvUnit(in_channels, filters, 1, 1, dropout)
        self.backward_unit = CausalConvUnit(in_channels, filters, 1, 1, dropout)
        self.blocks = nn.ModuleList(TemporalAwareBlock(filters, kernel_size, d, dropout) for d in dilations)
        self.output_dim = filters * len(dilations)

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(1, 2)
        axis = 1 if self.flip_axis == "channel" else 2
        fwd, bwd = self.forward_unit(x), self.backward_unit(torch.flip(x, dims=[axis]))
        sums = []
        for block in self.blocks:
            fwd, bwd = block(fwd), block(bwd)
            sums.append(fwd + (torch.flip(bwd, dims=[2]) if self.flip_axis == "time" else bwd))
        return torch.cat(sums, dim=1).transpose(1, 2)
