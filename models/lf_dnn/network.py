"""MMSA's late-fusion DNN (LF_DNN): per-modality subnetworks, concatenated, then a fusion MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from msabench.models.components.layers import BatchNorm1d
from msabench.models.components.text import TextEncoder
from msabench.models.lf_dnn.config import ModelConfig


def pooled_mean(x: Tensor, valid: Tensor, mode: str) -> Tensor:
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


def last_valid_index(valid: Tensor) -> Tensor:
    """Index of each sample's last valid position (B,); 0 where a sample has none (absent text)."""
    positions = torch.arange(valid.shape[1], device=valid.device).expand_as(valid)
    return torch.where(valid, positions, torch.zeros_like(positions)).amax(dim=1)


class TextLSTMSubnet(nn.Module):
    """Text subnet: a one-layer LSTM over the padded sequence, one of its states, then a Linear.

    MMSA forces the text dropout to 0 for a one-layer LSTM, so no dropout is applied here. ``final_step`` is
    MMSA's readout, the state after the trailing padding (no packing). ``last_valid`` reads the state at each
    sample's last valid token: a unidirectional LSTM's state there has seen every token and no padding,
    whereas after 35-40 zero-padded steps (MOSI) the final state has mostly forgotten the sentence.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, readout: str) -> None:
        super().__init__()
        self.readout = readout
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=1, batch_first=True)
        self.linear = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Encode (B, L, D) token features; ``valid`` (B, L) marks the positions that exist."""
        outputs, (h_n, _) = self.lstm(x)
        if self.readout == "final_step":
            return self.linear(h_n[-1])
        index = last_valid_index(valid).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])
        return self.linear(outputs.gather(1, index).squeeze(1))


class LFDNN(nn.Module):
    """Late-fusion DNN: an LSTM over the text, an MLP over the time-averaged audio and vision, an MLP fusion.

    Args:
        model: the ``model`` block (``config.yaml``; the subnet widths h_t, h_a, h_v, their dropouts, the text
            subnet's output width, the fusion width, the audio/vision pooling and the text readout).
        text_encoder: produces the token features the text subnet reads.
        audio_dim: raw audio feature width.
        vision_dim: raw vision feature width.
        output_dim: 1 for regression, the number of classes for classification.
    """

    def __init__(
        self, model: ModelConfig, text_encoder: TextEncoder, audio_dim: int, vision_dim: int, output_dim: int
    ) -> None:
        super().__init__()
        self.av_pool = model.av_pool
        self.text_encoder = text_encoder
        self.audio_subnet = FrameMeanSubnet(audio_dim, model.hidden_audio, model.dropout_audio)
        self.vision_subnet = FrameMeanSubnet(vision_dim, model.hidden_vision, model.dropout_vision)
        self.text_subnet = TextLSTMSubnet(
            text_encoder.output_dim, model.hidden_text, model.text_out, model.text_readout
        )
        self.fusion = nn.Sequential(
            nn.Dropout(model.dropout_post),
            nn.Linear(model.hidden_audio + model.hidden_vision + model.text_out, model.post_fusion_dim),
            nn.ReLU(),
            nn.Linear(model.post_fusion_dim, model.post_fusion_dim),
            nn.ReLU(),
            nn.Linear(model.post_fusion_dim, output_dim),
        )

    def forward(
        self,
        text: Tensor,
        audio: Tensor,
        audio_valid: Tensor,
        vision: Tensor,
        vision_valid: Tensor,
        text_valid: Tensor,
        text_ids: Tensor | None = None,
    ) -> Tensor:
        """Predict from (possibly incomplete) inputs; returns (B, output_dim)."""
        audio_h = self.audio_subnet(pooled_mean(audio, audio_valid, self.av_pool))
        vision_h = self.vision_subnet(pooled_mean(vision, vision_valid, self.av_pool))
        text_h = self.text_subnet(self.text_encoder(text, text_ids), text_valid)
        return self.fusion(torch.cat([audio_h, vision_h, text_h], dim=-1))
