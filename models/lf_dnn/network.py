"""MMSA's late-fusion DNN (LF_DNN): per-modality subnetworks, concatenated, then a fusion MLP."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from msabench.errors import ConfigError
from msabench.models.components.layers import BatchNorm1d
from msabench.models.components.text import TextEncoder


def pooled_mean(x: Tensor, valid: Tensor, mode: Literal["padded_mean", "valid_mean"]) -> Tensor:
    """Mean over time: over the full padded length (MMSA's ``need_normalized``) or over the valid frames."""
    if mode == "padded_mean":
        pooled = x.mean(dim=1)
    else:
        count = valid.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)
        pooled = (x * valid.unsqueeze(-1)).sum(dim=1) / count
    return torch.nan_to_num(pooled, nan=0.0, posinf=0.0, neginf=0.0)


class FrameMeanSubnet(nn.Module):
    """Audio/vision subnet: BatchNorm, Dropout, three Linear+ReLU layers on the time-averaged features."""

    def __init__(self, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            BatchNorm1d(in_dim),
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class TextLSTMSubnet(nn.Module):
    """Text subnet: a one-layer LSTM over the whole padded sequence, its final hidden state, then a Linear.

    MMSA forces the text dropout to 0 for a one-layer LSTM, so no dropout is applied here; and the final state
    is taken after the trailing padding (no packing), as in MMSA.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=1, batch_first=True)
        self.linear = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        _, (h_n, _) = self.lstm(x)
        return self.linear(h_n[-1])


class LFDNN(nn.Module):
    """Late-fusion DNN.

    Args:
        text_encoder: produces the token features the text subnet reads.
        audio_dim: raw audio feature width.
        vision_dim: raw vision feature width.
        output_dim: 1 for regression, the number of classes for classification.
        hidden_text: LSTM width (h_t).
        hidden_audio: audio subnet width (h_a).
        hidden_vision: vision subnet width (h_v).
        text_out: text subnet output width.
        post_fusion_dim: fusion MLP width.
        dropout_audio: dropout of the audio subnet.
        dropout_vision: dropout of the vision subnet.
        dropout_post: dropout before the fusion MLP.
        av_pool: ``padded_mean`` (MMSA-exact) or ``valid_mean``.
    """

    def __init__(
        self,
        text_encoder: TextEncoder,
        audio_dim: int,
        vision_dim: int,
        output_dim: int,
        hidden_text: int = 128,
        hidden_audio: int = 16,
        hidden_vision: int = 128,
        text_out: int = 256,
        post_fusion_dim: int = 128,
        dropout_audio: float = 0.2,
        dropout_vision: float = 0.2,
        dropout_post: float = 0.2,
        av_pool: Literal["padded_mean", "valid_mean"] = "padded_mean",
    ) -> None:
        super().__init__()
        if av_pool not in ("padded_mean", "valid_mean"):
            raise ConfigError(f"unknown model.av_pool '{av_pool}': use padded_mean or valid_mean")
        self.av_pool = av_pool
        self.text_encoder = text_encoder
        self.audio_subnet = FrameMeanSubnet(audio_dim, hidden_audio, dropout_audio)
        self.vision_subnet = FrameMeanSubnet(vision_dim, hidden_vision, dropout_vision)
        self.text_subnet = TextLSTMSubnet(text_encoder.output_dim, hidden_text, text_out)
        self.fusion = nn.Sequential(
            nn.Dropout(dropout_post),
            nn.Linear(hidden_audio + hidden_vision + text_out, post_fusion_dim),
            nn.ReLU(),
            nn.Linear(post_fusion_dim, post_fusion_dim),
            nn.ReLU(),
            nn.Linear(post_fusion_dim, output_dim),
        )

    def forward(
        self,
        text: Tensor,
        audio: Tensor,
        audio_valid: Tensor,
        vision: Tensor,
        vision_valid: Tensor,
        text_ids: Tensor | None = None,
    ) -> Tensor:
        """Predict from (possibly incomplete) inputs; returns (B, output_dim)."""
        audio_h = self.audio_subnet(pooled_mean(audio, audio_valid, self.av_pool))
        vision_h = self.vision_subnet(pooled_mean(vision, vision_valid, self.av_pool))
        text_h = self.text_subnet(self.text_encoder(text, text_ids))
        return self.fusion(torch.cat([audio_h, vision_h, text_h], dim=-1))
