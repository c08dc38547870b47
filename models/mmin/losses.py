"""MMIN's two imagination losses (the task loss is the base's)."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F


def imagination_loss(reconstruction: Tensor, target: Tensor) -> Tensor:
    """MSE between the forward autoencoder's imagined embeddings and the teacher's embeddings of x^rev."""
    return F.mse_loss(reconstruction, target)


def cycle_loss(cycle: Tensor, embeddings: Tensor) -> Tensor:
    """MSE between the backward autoencoder's output and the (B, 3, E) embeddings, flattened and detached."""
    return F.mse_loss(cycle, embeddings.flatten(1).detach())
