"""UMDF's building blocks: masked attention, the Transformer layer, windowing and the unimodal encoder.

Every attention masks padding (and, with ``attend_dropped=False``, dropped steps) through key masks, and a
query whose keys are all masked gets a zero output instead of NaN, so a wholly missing modality is safe.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.models.components.layers import sinusoidal_positions, window_mean


class MaskedAttention(nn.Module):
    """Multi-head attention with key masks; a query with no attendable key returns zeros, never NaN.

    Args:
        dim: model width.
        num_heads: heads (``dim`` divisible by it).
        dropout: dropout on the attention weights. Any value above 0 takes PyTorch's unfused attention on CPU,
            about 15x slower and O(T^2) in memory, which is why UMDF's default is 0.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, query: Tensor, source: Tensor, key_mask: Tensor) -> Tensor:
        """Attend from ``query`` (B, Tq, d) to ``source`` (B, Tk, d) where ``key_mask`` (B, Tk) is True."""
        batch, length, dim = query.shape
        heads = self.num_heads
        q = self.query(query).view(batch, length, heads, dim // heads).transpose(1, 2)
        kv = self.key_value(source).view(batch, source.shape[1], 2, heads, dim // heads)
        k, v = kv.permute(2, 0, 3, 1, 4)
        # A finite bias (not -inf) keeps a fully masked row finite; its output is zeroed below.
        bias = torch.zeros(key_mask.shape, dtype=q.dtype, device=q.device)
        bias = bias.masked_fill(~key_mask, torch.finfo(q.dtype).min)[:, None, None, :]
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0
        )
        attended = attended.transpose(1, 2).reshape(batch, length, dim)
        return self.out(attended) * key_mask.any(dim=1).to(attended.dtype)[:, None, None]


class FeedForward(nn.Sequential):
    """Position-wise FFN: Linear d -> m*d, ReLU, dropout, Linear m*d -> d."""

    def __init__(self, dim: int, multiplier: int, dropout: float) -> None:
        hidden = multiplier * dim
        super().__init__(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, dim))


class TransformerLayer(nn.Module):
    """Post-LN Transformer encoder layer (self-attention, then FFN) on masked sequences."""

    def __init__(
        self, dim: int, num_heads: int, ffn_multiplier: int, dropout: float, attention_dropout: float
    ) -> None:
        super().__init__()
        self.attention = MaskedAttention(dim, num_heads, attention_dropout)
        self.ffn = FeedForward(dim, ffn_multiplier, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, x, mask)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class TemporalEncoder(nn.Module):
    """One modality's encoder (CorrKD/HRLF style): Conv1d d_m -> d, sinusoidal positions, Transformer layers.

    Args:
        in_dim: raw feature width d_m.
        dim: model width d.
        num_heads: attention heads.
        num_layers: Transformer layers.
        ffn_multiplier: FFN width as a multiple of d.
        dropout: dropout of the residual branches and inside the FFN.
        attention_dropout: dropout of the attention weights.
        kernel_size: Conv1d kernel (odd; "same" padding).
        stride: average non-overlapping windows of this many steps before the convolution (1: none).
    """

    def __init__(
        self,
        in_dim: int,
        dim: int,
        num_heads: int,
        num_layers: int,
        ffn_multiplier: int,
        dropout: float,
        attention_dropout: float,
        kernel_size: int = 3,
        stride: int = 1,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.projection = nn.Conv1d(in_dim, dim, kernel_size, padding=kernel_size // 2)
        self.layers = nn.ModuleList(
            TransformerLayer(dim, num_heads, ffn_multiplier, dropout, attention_dropout)
            for _ in range(num_layers)
        )

    def forward(self, x: Tensor, valid: Tensor, mask: Tensor) -> Tensor:
        """Encode (B, T, d_m) with padding mask ``valid`` (B, T) -> (B, ceil(T / stride), d).

        ``mask`` is the key mask of the output steps (after windowing).
        """
        x = window_mean(x, valid, self.stride)
        x = self.projection(x.transpose(1, 2)).transpose(1, 2)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2], device=x.device).to(x.dtype)
        for layer in self.layers:
            x = layer(x, mask)
        return x
