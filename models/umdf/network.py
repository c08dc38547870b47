"""UMDF's network: encoders, multi-grained crossmodal interaction (MCIM), dynamic feature integration (DFIM).

One ``nn.Module`` serves both views. Only the abstract and the Figure 2 legend of the paper are known
(README, "What it does"); the layer-level design is [proposed] after the same group's CorrKD/HRLF
components. Every choice the sources leave open is a constructor argument (and a ``model.*`` config key),
listed in the README.

The building blocks live in ``layers.py`` (masked attention, the unimodal encoders), ``mcim.py`` and
``dfim.py``; this module assembles them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from msabench.models.components.layers import MLP, masked_mean, window_any, window_strides
from msabench.models.components.text import TextEncoder
from msabench.models.umdf.dfim import DFIM, Anchor, Pooling
from msabench.models.umdf.layers import TemporalEncoder
from msabench.models.umdf.mcim import CoarseSummary, MCIMBlock, MCIMOrder


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
        self.strides = window_strides(lengths, max_len)
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
