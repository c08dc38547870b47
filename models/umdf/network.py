"""UMDF's network: encoders, multi-grained crossmodal interaction (MCIM), dynamic feature integration (DFIM).

One ``nn.Module`` serves both views. Only the abstract and the Figure 2 legend of the paper are known
(methods.md §2.1); the layer-level design follows methods.md §2.3, which mirrors the same group's CorrKD/HRLF
components. Every choice the sources leave open is a constructor argument (and a ``model.*`` config key),
listed in the README.

Every attention masks padding (and, with ``attend_dropped=False``, dropped steps) through key masks, and a
query whose keys are all masked gets a zero output instead of NaN, so a wholly missing modality is safe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.models.components.layers import MLP, masked_mean, sinusoidal_positions
from msabench.models.components.text import TextEncoder

CoarseSummary = Literal["learned", "mean"]
MCIMOrder = Literal["sequential", "parallel"]
Pooling = Literal["mean", "mean_last"]
Anchor = Literal["text", "audio", "vision"]
ANCHORS: tuple[Anchor, Anchor, Anchor] = ("text", "audio", "vision")


class UMDFOutput(NamedTuple):
    """What one pass of the network returns.

    Attributes:
        prediction: (B, output_dim) regression value or class logits.
        modality: (B, 3, d) the MCIM output of each modality (text, audio, vision), pooled over its valid
            steps: the per-modality targets of the representation distillation.
        joint: (B, d') the DFIM joint representation that the head reads.
    """

    prediction: Tensor
    modality: Tensor
    joint: Tensor


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
        coarse_summary: CoarseSummary,
        summary_tokens: int,
        order: MCIMOrder,
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


def resample_onto(x: Tensor, valid: Tensor, anchor_valid: Tensor) -> Tensor:
    """Area-weighted resampling of a sequence onto another modality's timeline, per sample.

    Each sample's valid steps of ``x`` and of the anchor are both spread over [0, 1); anchor step rho gets
    the mean of the steps of ``x`` whose intervals overlap it, weighted by the overlap. Identity when both
    have the same valid steps (word-aligned data); adaptive average pooling for a longer ``x``; repetition
    for a shorter one.

    Args:
        x: (B, T_x, d) the sequence to resample.
        valid: (B, T_x) its valid steps.
        anchor_valid: (B, T_a) the anchor's valid steps.

    Returns:
        (B, T_a, d); zeros at the anchor's padding and where ``x`` has no valid step.
    """
    dtype = x.dtype
    length_x = valid.sum(dim=1, keepdim=True).clamp_min(1).to(dtype)[:, None]  # (B, 1, 1)
    length_a = anchor_valid.sum(dim=1, keepdim=True).clamp_min(1).to(dtype)[..., None]  # (B, 1, 1)
    rank_x = (valid.cumsum(dim=1) - 1).to(dtype)[:, None, :]  # (B, 1, T_x)
    rank_a = (anchor_valid.cumsum(dim=1) - 1).to(dtype)[:, :, None]  # (B, T_a, 1)
    start = torch.maximum(rank_a / length_a, rank_x / length_x)
    end = torch.minimum((rank_a + 1) / length_a, (rank_x + 1) / length_x)
    weight = (end - start).clamp_min(0) * valid[:, None, :] * anchor_valid[:, :, None]
    weight = weight / weight.sum(dim=2, keepdim=True).clamp_min(torch.finfo(dtype).tiny)
    return weight @ x


class DFIM(nn.Module):
    """Dynamic feature integration: sigmoid-gated frame-level self-enhancement, then selective filtering.

    Ŷ_m = Y_m + σ(W_g Y_m + b) ⊙ Y_m per modality; the three are put on the anchor's timeline (identity on
    word-aligned data), concatenated on the feature axis, U = [Ŷ_t; Ŷ_a; Ŷ_v], and filtered:
    f = σ(W_f U) ⊙ (W_u U). The joint representation is the mean of f over the anchor's valid steps, with the
    last valid step concatenated when ``pooling="mean_last"``.

    A sample whose anchor modality is absent has no anchor timeline (an absent modality has no positions);
    it takes the timeline of the first present modality in (text, audio, vision) order instead, so its joint
    representation is still built from what is present rather than being empty.
    """

    def __init__(self, dim: int, anchor: Anchor, pooling: Pooling) -> None:
        super().__init__()
        self.anchor = ANCHORS.index(anchor)
        self.pooling = pooling
        self.enhance = nn.ModuleList(nn.Linear(dim, dim) for _ in range(3))
        self.filter_gate = nn.Linear(3 * dim, dim)
        self.filter_value = nn.Linear(3 * dim, dim)
        self.output_dim = 2 * dim if pooling == "mean_last" else dim

    def forward(self, ys: Sequence[Tensor], valids: Sequence[Tensor]) -> Tensor:
        """Joint representation (B, output_dim) from the MCIM outputs ``ys`` and their valid masks."""
        enhanced = [y + torch.sigmoid(gate(y)) * y for gate, y in zip(self.enhance, ys, strict=True)]
        # Every sample's timeline is chosen on the device (no host synchronisation). The anchor resampled onto
        # its own valid steps is an exact identity, so a batch whose anchors are all present gets the result
        # of putting the others on the anchor's timeline.
        anchor_valid = self.fallback_timeline(valids)
        aligned = [resample_onto(y, valids[m], anchor_valid) for m, y in enumerate(enhanced)]
        u = torch.cat(aligned, dim=-1)
        frames = torch.sigmoid(self.filter_gate(u)) * self.filter_value(u)
        joint = masked_mean(frames, anchor_valid)
        if self.pooling == "mean_last":
            last = (anchor_valid.sum(dim=1) - 1).clamp_min(0)
            # Valid steps may not be a prefix: take the step of the highest rank instead of index length-1.
            rank = anchor_valid.cumsum(dim=1) - 1
            pick = (rank == last[:, None]) & anchor_valid
            joint = torch.cat([joint, (frames * pick[..., None]).sum(dim=1)], dim=-1)
        return joint

    def fallback_timeline(self, valids: Sequence[Tensor]) -> Tensor:
        """Per sample, the valid steps of the anchor, or of the first present modality when it is absent.

        Returns:
            (B, T) with T the longest of the three timelines; each row is one modality's valid mask,
            right-padded with False (resampling onto it is the identity for the modality it came from).
        """
        order = [self.anchor, *(m for m in range(3) if m != self.anchor)]
        length = max(v.shape[1] for v in valids)
        padded = torch.stack([F.pad(valids[m], (0, length - valids[m].shape[1])) for m in order], dim=1)
        present = padded.any(dim=2)  # (B, 3) in fallback order
        first = present & (present.cumsum(dim=1) == 1)
        return (padded & first[..., None]).any(dim=1)


class UMDFNetwork(nn.Module):
    """The single network both views go through (unified self-distillation needs no second network).

    Args:
        text_encoder: produces the token features (stored BERT features, or BERT on ids).
        audio_dim: raw audio feature width.
        vision_dim: raw vision feature width.
        output_dim: 1 for regression, the number of classes for classification.
        dim: embedding width d (40 in the group's papers).
        num_heads: attention heads (d must be divisible by it).
        encoder_layers: Transformer layers of each unimodal encoder.
        ffn_multiplier: FFN width as a multiple of d.
        dropout: dropout of the residual branches and inside the FFNs.
        attention_dropout: dropout of the attention weights.
        conv_kernel: kernel of the unimodal Conv1d.
        max_len: a modality longer than this is window-averaged by ceil(T / max_len) before its encoder; None
            keeps every step.
        mcim_blocks: MCIM blocks N.
        coarse_summary: ``learned`` (learned-query pooled tokens) or ``mean`` (the masked mean vector).
        summary_tokens: K, the number of learned summary tokens.
        mcim_order: ``sequential`` (coarse refines the fine-grained query) or ``parallel``.
        dfim_anchor: the modality whose timeline the DFIM puts the others on.
        pooling: ``mean`` over valid frames, or ``mean_last`` (mean and last valid frame, 2d).
        head_dropout: dropout of the prediction MLP.
        attend_dropped: dropped (zero-filled) steps are attention keys like any other step; False removes
            them from the keys, as padding is (they still enter the convolution and the pooling as zeros).
        lengths: padded length of each modality (text, audio, vision), for ``max_len``.
    """

    def __init__(
        self,
        text_encoder: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int,
        dim: int = 40,
        num_heads: int = 10,
        encoder_layers: int = 2,
        ffn_multiplier: int = 4,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        conv_kernel: int = 3,
        max_len: int | None = None,
        mcim_blocks: int = 2,
        coarse_summary: CoarseSummary = "learned",
        summary_tokens: int = 4,
        mcim_order: MCIMOrder = "sequential",
        dfim_anchor: Anchor = "text",
        pooling: Pooling = "mean",
        head_dropout: float = 0.1,
        attend_dropped: bool = True,
        lengths: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        self.attend_dropped = attend_dropped
        if max_len is not None and lengths is None:
            raise ValueError("max_len needs the padded lengths of the three modalities")
        self.strides = tuple(
            1 if max_len is None else max(1, math.ceil(n / max_len)) for n in lengths or (1, 1, 1)
        )
        self.text_encoder = text_encoder
        self.encoders = nn.ModuleList(
            TemporalEncoder(
                in_dim,
                dim,
                num_heads,
                encoder_layers,
                ffn_multiplier,
                dropout,
                attention_dropout,
                conv_kernel,
                stride,
            )
            for in_dim, stride in zip(
                (text_encoder.output_dim, audio_dim, vision_dim), self.strides, strict=True
            )
        )
        self.mcim = nn.ModuleList(
            MCIMBlock(
                dim,
                num_heads,
                ffn_multiplier,
                dropout,
                attention_dropout,
                coarse_summary,
                summary_tokens,
                mcim_order,
            )
            for _ in range(mcim_blocks)
        )
        self.dfim = DFIM(dim, dfim_anchor, pooling)
        width = self.dfim.output_dim
        self.head = MLP(width, width, output_dim, dropout=head_dropout)

    def forward(
        self,
        inputs: Sequence[Tensor],
        valid: Sequence[Tensor],
        keep: Sequence[Tensor] | None = None,
        text_ids: Tensor | None = None,
    ) -> UMDFOutput:
        """One pass on one view.

        Args:
            inputs: (text, audio, vision) features, each (B, T_m, d_m); missing steps are zeros.
            valid: their padding masks (B, T_m), True at real steps.
            keep: their present-step masks (B, T_m); used only when ``attend_dropped`` is False.
            text_ids: (B, 3, L) BERT ids, for a BERT text encoder.
        """
        features = (self.text_encoder(inputs[0], text_ids), *inputs[1:])
        xs, windowed_valid, key_masks = [], [], []
        for m in range(3):
            present = valid[m] if self.attend_dropped or keep is None else valid[m] & keep[m]
            key_masks.append(window_any(present, self.strides[m]))
            windowed_valid.append(window_any(valid[m], self.strides[m]))
            xs.append(self.encoders[m](features[m], valid[m], key_masks[m]))
        valid = windowed_valid
        for block in self.mcim:
            xs = block(xs, key_masks)
        modality = torch.stack([masked_mean(x, v) for x, v in zip(xs, valid, strict=True)], dim=1)
        joint = self.dfim(xs, valid)
        return UMDFOutput(self.head(joint), modality, joint)
