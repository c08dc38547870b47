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
from msabench.models.mitr_dnet.config import ModelConfig
from msabench.models.mitr_dnet.fusion import TransformerFusion
from msabench.models.mitr_dnet.timnet import TIMNet


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
        model: the ``model`` block (``config.yaml``, typed and checked by ``config.py``). Among its keys:
            ``timnet_filters`` channels per TIMNET stream (the representation width is ``timnet_filters x
            len(timnet_dilations)``); ``flip_axis``, what TIMNET's backward stream reverses (``channel`` as
            released, ``time`` as TIMNET); the self-attention's per-modality attention dropouts, heads (they
            must divide each raw width; 1 as released), layers, ``causal_mask`` (as released) and
            ``padding_mask`` (off as released); ``masked_mean``, pooling over valid steps only (off as
            released); the fusion's heads, dropouts, MLP width and adapter bottlenecks; ``text_width``, None
            (as released: the text is read at the encoder's width, BERT's 768) or a linear map's width first
            (a CPU preset; the text reconstruction target stays the encoder's states); ``max_len``, None (as
            released: every step) or the length above which a modality is averaged over non-overlapping
            windows of ceil(T / max_len) steps before its self-attention (a CPU preset; its reconstruction
            reads each window's representation at every step of the window).
        text_encoder: token features of the text (stored BERT states or a BERT on ids).
        audio_dim: raw audio width.
        vision_dim: raw vision width.
        output_dim: 1 for regression, the number of classes for classification.
        lengths: padded length of each modality (text with [CLS], audio, vision), for ``max_len``.
    """

    def __init__(
        self,
        model: ModelConfig,
        text_encoder: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int,
        lengths: tuple[int, int, int],
    ) -> None:
        super().__init__()
        # [CLS] is split off before anything reads the text.
        self.strides = window_strides((lengths[0] - 1, lengths[1], lengths[2]), model.max_len)
        self.padding_mask = model.padding_mask
        self.masked_mean = model.masked_mean
        self.text_encoder = text_encoder
        raw_dims = (text_encoder.output_dim, audio_dim, vision_dim)
        text_width = model.text_width
        self.text_projection: nn.Module = (
            nn.Linear(text_encoder.output_dim, text_width) if text_width else nn.Identity()
        )
        input_dims = (text_width or text_encoder.output_dim, audio_dim, vision_dim)
        attn_dropout = (model.attn_dropout_text, model.attn_dropout_audio, model.attn_dropout_vision)
        self.self_attention = nn.ModuleList(
            MulTEncoder(
                dim,
                model.encoder_heads,
                model.encoder_layers,
                attn_dropout=p,
                relu_dropout=model.relu_dropout,
                res_dropout=model.res_dropout,
                embed_dropout=model.embed_dropout,
                causal=model.causal_mask,
            )
            for dim, p in zip(input_dims, attn_dropout, strict=True)
        )
        dilations = tuple(model.timnet_dilations)
        timnets = [
            TIMNet(
                dim,
                model.timnet_filters,
                model.timnet_kernel,
                dilations,
                model.timnet_dropout,
                model.flip_axis,
            )
            for dim in input_dims
        ]
        # Named attributes: the optimizer gives the audio and vision TIMNETs their own learning rates.
        self.timnet_text, self.timnet_audio, self.timnet_vision = timnets
        dim = timnets[0].output_dim
        self.fusion = TransformerFusion(
            dim,
            model.fusion_heads,
            model.fusion_dropout,
            model.fusion_attn_dropout,
            model.fusion_mlp_dim,
            model.fusion_bottleneck,
            model.cross_bottleneck,
        )
        self.head = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(model.head_dropout), nn.Linear(dim, output_dim)
        )
        self.simsiam = nn.ModuleList(SimSiamHead(dim, model.predictor_dim) for _ in range(3))
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
