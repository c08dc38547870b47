"""IF-MMIN's losses beyond the task loss: stage 1's CMD, stage 2's imagination and invariance."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from msabench.models.components.losses import central_moment_discrepancy


def invariant_cmd(invariant: Tensor, n_moments: int) -> Tensor:
    """Mean CMD_K over the pairs (l, v), (l, a), (a, v) of invariant features (B, 3, E) in (a, l, v) order."""
    s_a, s_l, s_v = invariant.unbind(dim=1)
    pairs = ((s_l, s_v), (s_l, s_a), (s_a, s_v))
    return torch.stack([central_moment_discrepancy(x, y, n_moments) for x, y in pairs]).mean()


def imagination_loss(reconstruction: Tensor, target: Tensor) -> Tensor:
    """MSE between the IF-IM's imagined embeddings and the teacher's embeddings of x^rev."""
    return F.mse_loss(reconstruction, target)


def invariance_loss(invariant: Tensor, target: Tensor) -> Tensor:
    """MSE between the student's invariant features and the teacher's on the complete view."""
    return F.mse_loss(invariant, target)
