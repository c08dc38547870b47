"""The late-fusion GRU: one GRU per modality, a prediction per modality, fused by per-sample confidences."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# A logit low enough that softmax gives the modality a weight of exactly 0 in float32, yet finite, so a sample
# with no modality present gets uniform weights instead of NaN.
_ABSENT_LOGIT = -1.0e4


class ModalityGRU(nn.Module):
    """One modality: per-step LayerNorm, a linear projection, a one-layer GRU, the mean over present steps.

    The GRU reads the padded sequence left to right, so its output at a present step never depends on the
    padding after it; the mean is over the steps the protocol kept, so dropped steps only enter as the
    zeros they were set to.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        # Per step, not per batch: features that span decades (audio) are scaled without batch statistics,
        # so a sample's prediction never depends on the rest of its batch.
        self.norm = nn.LayerNorm(in_dim)
        self.project = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.gru = nn.GRU(hidden, hidden, batch_first=True)

    def forward(self, x: Tensor, present: Tensor) -> Tensor:
        """Pool (B, L, D) over the present steps ``present`` (B, L) into (B, hidden); zero where none is."""
        states, _ = self.gru(self.project(self.norm(x)))
        weights = present.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class LateFusionGRU(nn.Module):
    """Three unimodal GRU predictors and a confidence gate each; the fused prediction is their weighted sum.

    A modality that is absent, or whose every step was dropped, gets a weight of exactly 0: the fusion only
    ever averages the predictions of modalities that are there.

    Args:
        dims: feature widths of (text, audio, vision).
        output_dim: 1 for regression, the number of classes for classification.
        hidden: width of each GRU.
        dropout: dropout after each projection.
    """

    def __init__(
        self, dims: tuple[int, int, int], output_dim: int, hidden: int = 32, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(ModalityGRU(d, hidden, dropout) for d in dims)
        self.heads = nn.ModuleList(nn.Linear(hidden, output_dim) for _ in dims)
        self.gates = nn.ModuleList(nn.Linear(hidden, 1) for _ in dims)

    def forward(
        self, inputs: list[Tensor], present: list[Tensor], available: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Predict from each modality and fuse.

        Args:
            inputs: (B, L_m, D_m) features of text, audio and vision (the missing view).
            present: (B, L_m) bool, the steps the protocol kept, per modality.
            available: (B, 3) bool, the modality is there at all.

        Returns:
            The fused prediction (B, output_dim), the unimodal ones (B, 3, output_dim) and a (B, 3) bool of
            the modalities each sample had at least one step of.
        """
        pooled = [enc(x, keep) for enc, x, keep in zip(self.encoders, inputs, present, strict=True)]
        unimodal = torch.stack([head(h) for head, h in zip(self.heads, pooled, strict=True)], dim=1)
        logits = torch.cat([gate(h) for gate, h in zip(self.gates, pooled, strict=True)], dim=1)
        there = available & torch.stack([keep.any(dim=1) for keep in present], dim=1)
        weights = torch.softmax(logits.masked_fill(~there, _ABSENT_LOGIT), dim=1)
        return (weights.unsqueeze(-1) * unimodal).sum(dim=1), unimodal, there
