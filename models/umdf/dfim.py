"""UMDF's dynamic feature integration module (DFIM) and the timeline resampling it relies on."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from msabench.models.components.layers import masked_mean
from msabench.models.umdf.config import ANCHORS


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

    def __init__(self, dim: int, anchor: str, pooling: str) -> None:
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
