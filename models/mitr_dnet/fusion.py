"""MITR-DNet's Transformer Fusion: stream-wise self-attention, adapters and cross-attention adapters."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.models.components.layers import sinusoidal_positions


class Adapter(nn.Module):
    """LayerNorm, down-projection, ReLU, zero-initialised up-projection, times a fixed or learnable scale."""

    def __init__(self, dim: int, bottleneck: int, scale: float | None = 1.0) -> None:
        """Build the adapter; ``scale`` None makes it a learnable scalar starting at 1."""
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, bottleneck)
        self.up = nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.down.bias)
        # Zero up-projection: the branch starts as a no-op and grows during training.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale: Tensor | float = nn.Parameter(torch.ones(1)) if scale is None else float(scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.up(F.relu(self.down(self.norm(x)))) * self.scale


class StreamSelfAttention(nn.Module):
    """The fusion's stream-wise MHSA: one layer over a stream with positions and a second stream added.

    x + positions + c, dropout, multi-head self-attention (no LayerNorm before it, as on the released first
    layer), dropout and residual, then a pre-LayerNorm GELU feed-forward block (width ``dim``), residual.
    """

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ffn_norm = nn.LayerNorm(dim, eps=1e-6)
        self.ffn = nn.Sequential(
            nn.Linear(dim, dim),
            nn.GELU(approximate="tanh"),
            nn.Dropout(dropout),
            nn.Linear(dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor, speaker: Tensor) -> Tensor:
        """x, speaker: (B, N, D) -> (B, N, D)."""
        h = self.dropout(x + sinusoidal_positions(x.shape[1], x.shape[2], x.device).to(x.dtype) + speaker)
        attended, _ = self.attention(h, h, h, need_weights=False)
        h = h + self.dropout(attended)
        return h + self.ffn(self.ffn_norm(h))


class CrossAttentionAdapter(nn.Module):
    """XAA: LayerNormed query and context, multi-head attention without output projection, then an adapter."""

    def __init__(self, dim: int, num_heads: int, dropout: float, bottleneck: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query_norm = nn.LayerNorm(dim)
        self.context_norm = nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.adapter = Adapter(dim, bottleneck, scale=None)

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """Queries (B, N, D) attend to a context (B, M, D) -> (B, N, D)."""
        q, c = self.query_norm(x), self.context_norm(context)
        attended = F.scaled_dot_product_attention(
            self._heads(self.query(q)),
            self._heads(self.key(c)),
            self._heads(self.value(c)),
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.adapter(attended.transpose(1, 2).flatten(-2))


class TransformerFusion(nn.Module):
    """Transformer Fusion (the released ``FusionMode``) of streams A and B, with a third, C, as embedding.

    H_X = MHSA_X(X, C) + X;  out_X = Adapter_X(H_X) + (H_X + MLP_X(H_X)) + XAA_X(H_X <- H_other);
    F = out_A + out_B.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 10,
        dropout: float = 0.1,
        attn_dropout: float = 0.01,
        mlp_dim: int = 50,
        bottleneck: int = 50,
        cross_bottleneck: int = 64,
    ) -> None:
        super().__init__()
        self.streams = nn.ModuleList(StreamSelfAttention(dim, num_heads, dropout) for _ in range(2))
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, dim)) for _ in range(2)
        )
        self.adapters = nn.ModuleList(Adapter(dim, bottleneck, scale=1.0) for _ in range(2))
        self.cross = nn.ModuleList(
            CrossAttentionAdapter(dim, num_heads, attn_dropout, cross_bottleneck) for _ in range(2)
        )

    def forward(self, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        """a, b, c: (B, N, D) -> (B, N, D)."""
        hidden = [stream(x, c) + x for stream, x in zip(self.streams, (a, b), strict=True)]
        out = []
        for i, h in enumerate(hidden):
            other = hidden[1 - i]
            out.append(self.adapters[i](h) + h + self.mlps[i](h) + self.cross[i](h, other))
        return out[0] + out[1]
