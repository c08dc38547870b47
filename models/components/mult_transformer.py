"""MulT's Transformer encoder (Tsai et al., ACL 2019), as the MulT-derived MSA code uses it.

TFR-Net, EMT-DLFR and MITR-DNet (and MulT-style cross-modal attention in general) take this encoder as is:
the input scaled by sqrt(D), fairseq's sinusoidal positions, embedding dropout, pre-LayerNorm layers
(attention, then a 4x ReLU feed-forward block, each with a residual) and a final LayerNorm. Given a
``context`` sequence the layers attend from ``x`` to it (cross-modal attention, "modality n -> m");
otherwise they self-attend.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def mult_positions(x: Tensor) -> Tensor:
    """MulT's (fairseq's) sinusoidal position embedding for a (B, T, D) sequence.

    Positions count from 1, and a step whose first feature is exactly 0 counts as padding and gets a zero
    vector (fairseq's ``padding_idx``), so padded steps and zeroed (dropped) steps carry no position. The
    layout is [sin | cos] with frequencies 10000^(-i / (D//2 - 1)); an odd D gets a zero last column.

    fairseq divides by D//2 - 1, which is 0 for D in {2, 3} and gives NaN there; we divide by at least 1.
    """
    batch, length, dim = x.shape
    half = dim // 2
    frequency = torch.exp(
        torch.arange(half, device=x.device, dtype=torch.float32) * -(math.log(10000.0) / max(half - 1, 1))
    )
    present = x[..., 0] != 0
    position = torch.arange(1, length + 1, device=x.device, dtype=torch.float32).expand(batch, length)
    angle = (position * present).unsqueeze(-1) * frequency
    table = torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1) * present.unsqueeze(-1)
    if dim % 2:
        table = F.pad(table, (0, 1))
    return table.to(x.dtype)


def future_mask(query_len: int, key_len: int, device: torch.device) -> Tensor:
    """MulT's causal mask, True where attention is forbidden: key j is hidden from query i if j > i + |Tk-Tq|.

    Args:
        query_len: Tq.
        key_len: Tk.
        device: where to build it.
    """
    offset = abs(key_len - query_len)
    rows = torch.arange(query_len, device=device).unsqueeze(1)
    cols = torch.arange(key_len, device=device).unsqueeze(0)
    return cols > rows + offset


def _xavier_linear(in_dim: int, out_dim: int) -> nn.Linear:
    # MulT initialises its feed-forward layers with Xavier-uniform weights and zero biases.
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class MulTEncoderLayer(nn.Module):
    """One pre-LayerNorm layer: attention and a 4x ReLU feed-forward block, each with dropout and a residual.

    Args:
        dim: model width.
        num_heads: attention heads (must divide ``dim``).
        attn_dropout: dropout on the attention weights.
        relu_dropout: dropout after the feed-forward ReLU.
        res_dropout: dropout on each block's output, before its residual.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, num_heads, dropout=attn_dropout, batch_first=True)
        self.norm_attention = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.fc1 = _xavier_linear(dim, 4 * dim)
        self.fc2 = _xavier_linear(4 * dim, dim)
        self.relu_dropout = nn.Dropout(relu_dropout)
        self.res_dropout = nn.Dropout(res_dropout)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """(B, Tq, D) -> (B, Tq, D); ``context`` (B, Tk, D) for cross-attention; masks True = forbidden."""
        query = self.norm_attention(x)
        # MulT normalises keys/values with the same LayerNorm as the query.
        source = query if context is None else self.norm_attention(context)
        attended, _ = self.attention(
            query, source, source, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False
        )
        x = x + self.res_dropout(attended)
        hidden = self.relu_dropout(F.relu(self.fc1(self.norm_ffn(x))))
        return x + self.res_dropout(self.fc2(hidden))


class MulTEncoder(nn.Module):
    """MulT's Transformer encoder: self-attention, or cross-attention to a context sequence of the same width.

    Args:
        dim: model width (MulT-derived unimodal encoders use the raw feature width here).
        num_heads: attention heads (must divide ``dim``).
        num_layers: encoder layers.
        attn_dropout: dropout on the attention weights.
        relu_dropout: dropout after the feed-forward ReLU.
        res_dropout: dropout before each residual.
        embed_dropout: dropout on the scaled, position-embedded input.
        causal: hide future steps (MulT's ``attn_mask=True``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        num_layers: int = 1,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"MulTEncoder: {num_heads} heads do not divide the width {dim}")
        self.scale = math.sqrt(dim)
        self.causal = causal
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.layers = nn.ModuleList(
            MulTEncoderLayer(dim, num_heads, attn_dropout, relu_dropout, res_dropout)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def _embed(self, x: Tensor) -> Tensor:
        return self.embed_dropout(self.scale * x + mult_positions(x))

    def forward(self, x: Tensor, context: Tensor | None = None, key_valid: Tensor | None = None) -> Tensor:
        """Encode ``x`` (B, Tq, D).

        Args:
            x: the query sequence.
            context: (B, Tk, D) sequence to attend to; None for self-attention.
            key_valid: (B, Tk) bool, True for real key steps; None attends to padding too (as MulT does).

        Returns:
            (B, Tq, D).
        """
        h = self._embed(x)
        keys = None if context is None else self._embed(context)
        key_len = x.shape[1] if context is None else context.shape[1]
        attn_mask = future_mask(x.shape[1], key_len, x.device) if self.causal else None
        key_padding_mask = None
        if key_valid is not None:
            # A sequence with no valid step keeps all its keys, so no query row is left with nothing to attend
            # to (right padding with the causal mask always leaves the first step visible).
            key_padding_mask = ~key_valid & key_valid.any(dim=1, keepdim=True)
        for layer in self.layers:
            h = layer(h, keys, attn_mask=attn_mask, key_padding_mask=key_padding_mask)
        return self.norm(h)
