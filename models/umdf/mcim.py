"""UMDF's multi-grained crossmodal interaction module (MCIM): coarse-grained then fine-grained attention."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from msabench.models.components.layers import masked_mean
from msabench.models.umdf.layers import FeedForward, MaskedAttention, TransformerLayer


class MCIMBlock(nn.Module):
    """One block of the multi-grained crossmodal interaction module.

    For each target modality m and each source n != m: coarse-grained attention from the tokens of m to a
    compact summary of n (``summary_tokens`` learned-query pooled tokens, or the masked mean of n), then
    fine-grained token-level attention from m to the tokens of n (MulT style). With ``order="sequential"`` the
    fine-grained query is the coarse-refined target X_m + sum_n C_nm, so the coarse view guides the fine one;
    ``"parallel"`` queries both from X_m. Then Y_m = LN(X_m + sum_n (C_nm + F_nm)), Y_m = LN(Y_m + FFN(Y_m)),
    and one intra-modal self-attention layer (self-attention + FFN).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_multiplier: int,
        dropout: float,
        attention_dropout: float,
        coarse_summary: str,
        summary_tokens: int,
        order: str,
    ) -> None:
        super().__init__()
        self.coarse_summary = coarse_summary
        self.order = order
        pairs = [f"{n}_to_{m}" for m in range(3) for n in range(3) if n != m]
        attention = partial(MaskedAttention, dim, num_heads, attention_dropout)
        if coarse_summary == "learned":
            self.summary_queries = nn.Parameter(torch.randn(3, summary_tokens, dim) * dim**-0.5)
            self.summarise = nn.ModuleList(attention() for _ in range(3))
        self.coarse = nn.ModuleDict({p: attention() for p in pairs})
        self.fine = nn.ModuleDict({p: attention() for p in pairs})
        self.cross_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.ffn = nn.ModuleList(FeedForward(dim, ffn_multiplier, dropout) for _ in range(3))
        self.ffn_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.intra = nn.ModuleList(
            TransformerLayer(dim, num_heads, ffn_multiplier, dropout, attention_dropout) for _ in range(3)
        )
        self.dropout = nn.Dropout(dropout)

    def summaries(self, xs: Sequence[Tensor], masks: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """Per source modality: its summary tokens (B, K, d) and their key mask (B, K)."""
        out = []
        for n, (x, mask) in enumerate(zip(xs, masks, strict=True)):
            present = mask.any(dim=1, keepdim=True)
            if self.coarse_summary == "learned":
                queries = self.summary_queries[n].unsqueeze(0).expand(x.shape[0], -1, -1)
                tokens = self.summarise[n](queries, x, mask)
            else:
                tokens = masked_mean(x, mask).unsqueeze(1)
            out.append((tokens, present.expand(-1, tokens.shape[1])))
        return out

    def forward(self, xs: Sequence[Tensor], masks: Sequence[Tensor]) -> list[Tensor]:
        """Update the three sequences ``xs`` (B, T_m, d) under their key masks (B, T_m)."""
        summaries = self.summaries(xs, masks)
        out = []
        for m, (x, mask) in enumerate(zip(xs, masks, strict=True)):
            sources = [n for n in range(3) if n != m]
            coarse = sum(self.coarse[f"{n}_to_{m}"](x, *summaries[n]) for n in sources)
            query = x + coarse if self.order == "sequential" else x
            fine = sum(self.fine[f"{n}_to_{m}"](query, xs[n], masks[n]) for n in sources)
            y = self.cross_norm[m](x + self.dropout(coarse + fine))
            y = self.ffn_norm[m](y + self.dropout(self.ffn[m](y)))
            out.append(self.intra[m](y, mask))
        return out
