"""MITR-DNet's network (Wang et al., arXiv 2501.05474; Wangai30/MITR-DNet @ 00c9252).

One view (complete or missing) goes: text encoder ([CLS] split off) -> per-modality MulT self-attention on
the raw features -> MIB-TRL (a bidirectional temporal-aware network, TIMNET, per modality) -> mean over time
-> Transformer Fusion of audio and video with text as the additive "speaker" embedding -> regression (or
classification) head. The SimSiam projector/predictor and the low-level reconstruction heads are training-only
branches that the module calls.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.models.components.layers import BatchNorm1d, masked_mean, sinusoidal_positions
from msabench.models.components.mult_transformer import MulTEncoder
from msabench.models.components.text import TextEncoder

FlipAxis = Literal["channel", "time"]


# ------------------------------------------------------------------------------------------------------------
# MIB-TRL: TIMNET


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
        flip_axis: FlipAxis = "channel",
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


# ------------------------------------------------------------------------------------------------------------
# Transformer Fusion


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


# ------------------------------------------------------------------------------------------------------------
# Heads


class SimSiamHead(nn.Module):
    """Projector Linear+BatchNorm(affine False), predictor Linear(no bias)+BatchNorm+ReLU+Linear."""

    def __init__(self, dim: int, predictor_dim: int) -> None:
        super().__init__()
        self.projector = nn.Sequential(nn.Linear(dim, dim), BatchNorm1d(dim, affine=False))
        self.predictor = nn.Sequential(
            nn.Linear(dim, predictor_dim, bias=False),
            BatchNorm1d(predictor_dim),
            nn.ReLU(),
            nn.Linear(predictor_dim, dim),
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D) -> (z detached, p)."""
        z = self.projector(x)
        return z.detach(), self.predictor(z)


class Encoding(NamedTuple):
    """What one view's pass produces.

    Attributes:
        text_tokens: (B, L - 1, D_t) text-encoder states without [CLS] (the text reconstruction target).
        sequences: per modality (text, audio, vision) the MIB-TRL output (B, T_m, d).
        pooled: (B, 3, d) unimodal representations z̄_m, (text, audio, vision).
        fused: (B, d) the fused representation F.
        prediction: (B, output_dim) head output.
    """

    text_tokens: Tensor
    sequences: tuple[Tensor, Tensor, Tensor]
    pooled: Tensor
    fused: Tensor
    prediction: Tensor


class MITRDNet(nn.Module):
    """MITR-DNet: MulT self-attention + MIB-TRL per modality, Transformer Fusion, and the training-only heads.

    Args:
        text_encoder: token features of the text (stored BERT states or a BERT on ids).
        audio_dim: raw audio width.
        vision_dim: raw vision width.
        output_dim: 1 for regression, the number of classes for classification.
        filters: TIMNET channels per stream; the representation width is ``filters x len(dilations)``.
        kernel_size: TIMNET kernel.
        dilations: TIMNET dilations.
        timnet_dropout: TIMNET dropout.
        flip_axis: what TIMNET's backward stream reverses (``channel`` as released, ``time`` as TIMNET).
        attn_dropout: self-attention weight dropout per modality (text, audio, vision).
        embed_dropout: self-attention embedding dropout.
        relu_dropout: self-attention feed-forward dropout.
        res_dropout: self-attention residual dropout.
        encoder_heads: self-attention heads (must divide each raw width; 1 as released).
        encoder_layers: self-attention layers.
        causal_mask: causal attention in the self-attention encoders (as released).
        padding_mask: hide padded steps from the self-attention (off as released).
        masked_mean: pool over valid steps only (off as released: padded steps count).
        fusion_heads: heads of the fusion's attention (must divide the width).
        fusion_dropout: dropout of the fusion's stream-wise attention blocks.
        fusion_attn_dropout: attention dropout of the fusion's cross-attention.
        fusion_mlp_dim: hidden width of the fusion's MLP branch.
        fusion_bottleneck: bottleneck of the fusion's adapter branch.
        cross_bottleneck: bottleneck of the adapter after the cross-attention.
        head_dropout: dropout inside the prediction head.
        predictor_dim: hidden width of the SimSiam predictors.
    """

    def __init__(
        self,
        text_encoder: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int = 1,
        filters: int = 25,
        kernel_size: int = 2,
        dilations: tuple[int, ...] = (1, 2, 4, 8),
        timnet_dropout: float = 0.01,
        flip_axis: FlipAxis = "channel",
        attn_dropout: tuple[float, float, float] = (0.3, 0.2, 0.0),
        embed_dropout: float = 0.2,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        encoder_heads: int = 1,
        encoder_layers: int = 1,
        causal_mask: bool = True,
        padding_mask: bool = False,
        masked_mean: bool = False,
        fusion_heads: int = 10,
        fusion_dropout: float = 0.1,
        fusion_attn_dropout: float = 0.01,
        fusion_mlp_dim: int = 50,
        fusion_bottleneck: int = 50,
        cross_bottleneck: int = 64,
        head_dropout: float = 0.5,
        predictor_dim: int = 50,
    ) -> None:
        super().__init__()
        self.padding_mask = padding_mask
        self.masked_mean = masked_mean
        self.text_encoder = text_encoder
        raw_dims = (text_encoder.output_dim, audio_dim, vision_dim)
        self.self_attention = nn.ModuleList(
            MulTEncoder(
                dim,
                encoder_heads,
                encoder_layers,
                attn_dropout=p,
                relu_dropout=relu_dropout,
                res_dropout=res_dropout,
                embed_dropout=embed_dropout,
                causal=causal_mask,
            )
            for dim, p in zip(raw_dims, attn_dropout, strict=True)
        )
        timnets = [
            TIMNet(dim, filters, kernel_size, tuple(dilations), timnet_dropout, flip_axis) for dim in raw_dims
        ]
        # Named attributes: the optimizer gives the audio and vision TIMNETs their own learning rates.
        self.timnet_text, self.timnet_audio, self.timnet_vision = timnets
        dim = timnets[0].output_dim
        self.fusion = TransformerFusion(
            dim,
            fusion_heads,
            fusion_dropout,
            fusion_attn_dropout,
            fusion_mlp_dim,
            fusion_bottleneck,
            cross_bottleneck,
        )
        self.head = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(head_dropout), nn.Linear(dim, output_dim)
        )
        self.simsiam = nn.ModuleList(SimSiamHead(dim, predictor_dim) for _ in range(3))
        self.reconstruction = nn.ModuleList(nn.Linear(dim, raw) for raw in raw_dims)

    @property
    def timnets(self) -> tuple[TIMNet, TIMNet, TIMNet]:
        """The MIB-TRL networks in (text, audio, vision) order."""
        return self.timnet_text, self.timnet_audio, self.timnet_vision

    def encode(
        self,
        text: Tensor,
        audio: Tensor,
        vision: Tensor,
        text_valid: Tensor,
        audio_valid: Tensor,
        vision_valid: Tensor,
        text_ids: Tensor | None = None,
    ) -> Encoding:
        """Encode one view (complete or missing); shapes as in the batch contract."""
        tokens = self.text_encoder(text, text_ids)[:, 1:]  # [CLS] is split off and unused
        inputs = (tokens, audio, vision)
        valid = (text_valid[:, 1:], audio_valid, vision_valid)
        sequences = []
        for x, mask, attention, timnet in zip(inputs, valid, self.self_attention, self.timnets, strict=True):
            attended = attention(x, key_valid=mask if self.padding_mask else None)
            sequences.append(timnet(attended))
        pooled = torch.stack(
            [masked_mean(s, m if self.masked_mean else None) for s, m in zip(sequences, valid, strict=True)],
            dim=1,
        )
        text_rep, audio_rep, vision_rep = pooled.unsqueeze(2).unbind(dim=1)
        fused = self.fusion(audio_rep, vision_rep, text_rep).squeeze(1)
        return Encoding(tokens, tuple(sequences), pooled, fused, self.head(fused))  # type: ignore[arg-type]

    def attraction_heads(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        """SimSiam projections z (detached) and predictions p of (B, 3, d) representations, each (B, 3, d)."""
        z, p = zip(
            *(head(x) for head, x in zip(self.simsiam, pooled.unbind(dim=1), strict=True)), strict=True
        )
        return torch.stack(z, dim=1), torch.stack(p, dim=1)

    def reconstruct(self, sequences: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Low-level reconstructions (B, T_m, D_m) of the text tokens (without [CLS]), audio and vision."""
        return tuple(head(s) for head, s in zip(self.reconstruction, sequences, strict=True))  # type: ignore[return-value]

    def forward(
        self,
        text: Tensor,
        audio: Tensor,
        vision: Tensor,
        text_valid: Tensor,
        audio_valid: Tensor,
        vision_valid: Tensor,
        text_ids: Tensor | None = None,
    ) -> Tensor:
        """Prediction (B, output_dim) from one view."""
        return self.encode(text, audio, vision, text_valid, audio_valid, vision_valid, text_ids).prediction
