"""MITR-DNet's network (Wang et al., arXiv 2501.05474; Wangai30/MITR-DNet @ 00c9252).

One view (complete or missing) goes: text encoder ([CLS] split off) -> per-modality MulT self-attention on
the raw features -> MIB-TRL (a bidirectional temporal-aware network, TIMNET, per modality) -> mean over time
-> Transformer Fusion of audio and video with text as the additive "speaker" embedding -> regression (or
classification) head. The SimSiam projector/predictor and the low-level reconstruction heads are training-only
branches that the module calls. TIMNET is in ``timnet.py``, the fusion in ``fusion.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from msabench.models.components.layers import (
    BatchNorm1d,
    masked_mean,
    window_any,
    window_mean,
    window_strides,
)
from msabench.models.components.mult_transformer import MulTEncoder
from msabench.models.components.text import TextEncoder
from msabench.models.mitr_dnet.fusion import TransformerFusion
from msabench.models.mitr_dnet.timnet import FlipAxis, TIMNet


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
        text_width: None (as released): the text self-attention and TIMNET read the text encoder's states at
            their own width (BERT's 768); an integer: a linear map to this width first (a CPU width preset).
            The text reconstruction target stays the encoder's states.
        max_len: None (as released): every step; an integer: a modality longer than this is averaged over
            non-overlapping windows of ceil(T / max_len) steps before its self-attention (a CPU preset), and
            its reconstruction reads each window's representation at every step of the window.
        lengths: padded length of each modality (text with [CLS], audio, vision), for ``max_len``.
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
        text_width: int | None = None,
        max_len: int | None = None,
        lengths: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        # [CLS] is split off before anything reads the text.
        read = None if lengths is None else (lengths[0] - 1, lengths[1], lengths[2])
        self.strides = window_strides(read, max_len)
        self.padding_mask = padding_mask
        self.masked_mean = masked_mean
        self.text_encoder = text_encoder
        raw_dims = (text_encoder.output_dim, audio_dim, vision_dim)
        self.text_projection: nn.Module = (
            nn.Linear(text_encoder.output_dim, text_width) if text_width else nn.Identity()
        )
        input_dims = (text_width or text_encoder.output_dim, audio_dim, vision_dim)
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
            for dim, p in zip(input_dims, attn_dropout, strict=True)
        )
        timnets = [
            TIMNet(dim, filters, kernel_size, tuple(dilations), timnet_dropout, flip_axis)
            for dim in input_dims
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
        inputs = (self.text_projection(tokens), audio, vision)
        valid = (text_valid[:, 1:], audio_valid, vision_valid)
        sequences, windowed_valid = [], []
        for x, mask, stride, attention, timnet in zip(
            inputs, valid, self.strides, self.self_attention, self.timnets, strict=True
        ):
            # Padding reads as zeros, as released (also after text_width's map, whose bias it would carry).
            x = window_mean(x, mask, stride)
            mask = window_any(mask, stride)
            attended = attention(x, key_valid=mask if self.padding_mask else None)
            sequences.append(timnet(attended))
            windowed_valid.append(mask)
        pooled = torch.stack(
            [
                masked_mean(s, m if self.masked_mean else None)
                for s, m in zip(sequences, windowed_valid, strict=True)
            ],
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

    def reconstruct(
        self, sequences: tuple[Tensor, Tensor, Tensor], lengths: tuple[int, int, int]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Low-level reconstructions (B, T_m, D_m) of the text tokens (without [CLS]), audio and vision.

        Args:
            sequences: the MIB-TRL outputs, one step per window where ``max_len`` windows a modality.
            lengths: the steps T_m of each target; a window's representation reconstructs each of its steps.
        """
        return tuple(  # type: ignore[return-value]
            head(s.repeat_interleave(stride, dim=1)[:, :length])
            for head, s, stride, length in zip(
                self.reconstruction, sequences, self.strides, lengths, strict=True
            )
        )

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
