"""Losses shared by several methods."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def central_moment_discrepancy(x: Tensor, y: Tensor, n_moments: int = 5) -> Tensor:
    """CMD_K (Zellinger et al.): ||E[x] - E[y]||_2 + sum_{k=2..K} ||c_k(x) - c_k(y)||_2.

    Expectations are per dimension over the batch, c_k the k-th central moment; no range normalisation (as in
    IF-MMIN's and MISA's code).

    Args:
        x: (N, D) features of one modality.
        y: (M, D) features of another.
        n_moments: K, the highest moment (5 in IF-MMIN and MISA).
    """
    mean_x, mean_y = x.mean(dim=0), y.mean(dim=0)
    total = torch.linalg.vector_norm(mean_x - mean_y)
    centred_x, centred_y = x - mean_x, y - mean_y
    for k in range(2, n_moments + 1):
        total = total + torch.linalg.vector_norm(centred_x.pow(k).mean(dim=0) - centred_y.pow(k).mean(dim=0))
    return total


def masked_reconstruction_loss(prediction: Tensor, target: Tensor, dropped: Tensor) -> Tensor:
    """SmoothL1 over dropped-and-valid positions only, normalised by (their count x feature dim).

    The TFR-Net / EMT-DLFR / MITR-DNet / TF-Mamba low-level reconstruction loss. Zero when nothing was
    dropped.

    Args:
        prediction: (B, T, D) reconstructed features.
        target: (B, T, D) complete features.
        dropped: (B, T) bool, valid positions the missing view lost (``valid & ~keep``).
    """
    weight = dropped.unsqueeze(-1).to(prediction.dtype)
    loss = F.smooth_l1_loss(prediction * weight, target * weight, reduction="sum")
    count = weight.sum() * prediction.shape[-1]
    return loss / count.clamp_min(1.0)


def difference_loss(private: Tensor, shared: Tensor) -> Tensor:
    """MISA's soft orthogonality: ||P^T S||_F^2 / D^2 on batch-centred, row-L2-normalised (B, D) matrices."""
    p = F.normalize(private - private.mean(dim=0, keepdim=True), dim=1)
    s = F.normalize(shared - shared.mean(dim=0, keepdim=True), dim=1)
    return (p.transpose(0, 1) @ s).pow(2).sum() / (p.shape[1] * s.shape[1])
