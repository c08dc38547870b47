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
from msabench.models.umdf.config import ModelConfig
from msabench.models.umdf.dfim import DFIM
from msabench.models.umdf.layers import TemporalEncoder
from msabench.models.umdf.mcim import MCIMBlock


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
        model: the ``model`` block (``config.yaml``, typed and checked by ``config.py``): the width d, its
            heads, the unimodal encoders (layers, FFN multiple, dropouts, Conv1d kernel, ``max_len``), the
            MCIM (blocks, coarse summary and its tokens, order), the DFIM anchor and pooling, the head's
            dropout, and whether dropped steps are attention keys.
        text_encoder: produces the token features (stored BERT features, or BERT on ids).
        audio_dim: raw audio feature width.
        vision_dim: raw vision feature width.
        output_dim: 1 for regression, the number of classes for classification.
        lengths: padded length of each modality (text, audio, vision), for ``max_len``.
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
        dim, heads, ffn, dropout, attention = (
            model.dim,
            model.num_heads,
            model.ffn_multiplier,
            model.dropout,
            model.attention_dropout,
        )
        self.attend_dropped = model.attend_dropped
        self.strides = window_strides(lengths, model.max_len)
        self.text_encoder = text_encoder
        self.encoders = nn.ModuleList(
            TemporalEncoder(
                in_dim, dim, heads, model.encoder_layers, ffn, dropout, attention, model.conv_kernel, stride
            )
            for in_dim, stride in zip(
                (text_encoder.output_dim, audio_dim, vision_dim), self.strides, strict=True
            )
        )
        self.mcim = nn.ModuleList(
            MCIMBlock(
                dim,
                heads,
                ffn,
                dropout,
                attention,
                model.coarse_summary,
                model.summary_tokens,
                model.mcim_order,
            )
            for _ in range(model.mcim_blocks)
        )
        self.dfim = DFIM(dim, model.dfim_anchor, model.pooling)
        width = self.dfim.output_dim
        self.head = MLP(width, width, output_dim, dropout=model.head_dropout)

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
