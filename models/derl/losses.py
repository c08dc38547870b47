"""DERL's losses beside the task loss: orthogonality, shared alignment, router balance, reconstruction."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import cast

import torch
from torch import Tensor

from msabench.core.vocabulary import MODALITIES
from msabench.models.components.losses import (
    central_moment_discrepancy,
    difference_loss,
    masked_reconstruction_loss,
)


def orthogonality_loss(private: Tensor, shared: Tensor) -> Tensor:
    """Σ_m diff(P_m, S_m) + Σ_{m<n} diff(P_m, P_n) on token-pooled (B, M, H) features.

    ``diff`` is MISA's difference loss (soft orthogonality of batch-centred, row-normalised matrices).
    """
    modalities = range(private.shape[1])
    total = cast(Tensor, sum(difference_loss(private[:, m], shared[:, m]) for m in modalities))
    return total + sum(difference_loss(private[:, m], private[:, n]) for m, n in combinations(modalities, 2))


def shared_alignment_loss(shared: Tensor, n_moments: int = 5) -> Tensor:
    """Mean over modality pairs of CMD_K between the token-pooled (B, M, H) shared features."""
    pairs = list(combinations(range(shared.shape[1]), 2))
    total = sum(central_moment_discrepancy(shared[:, m], shared[:, n], n_moments) for m, n in pairs)
    return total / len(pairs)  # type: ignore[return-value]


def router_balance_loss(router: Tensor) -> Tensor:
    """Squared coefficient of variation (population variance / mean²) of the mean router probabilities.

    Args:
        router: (B, M, K) dense router probabilities; averaged over samples and modalities into (K,).
    """
    importance = router.reshape(-1, router.shape[-1]).mean(dim=0)
    return importance.var(unbiased=False) / importance.mean().pow(2).clamp_min(1e-12)


def target_scale(target: Tensor, valid: Tensor) -> Tensor:
    """A modality's scale in a batch: the root of its mean per-feature variance over the valid steps.

    Computed on the device (no host sync) and detached, so it rescales the loss without being a target.

    Args:
        target: (B, T, D) complete-view features.
        valid: (B, T) bool, the steps that exist.
    """
    weight = valid.unsqueeze(-1).to(target.dtype)
    count = weight.sum(dim=(0, 1)).clamp_min(1.0)
    mean = (target * weight).sum(dim=(0, 1)) / count
    spread = (((target - mean).pow(2) * weight).sum(dim=(0, 1)) / count).mean()
    # A modality with no spread in the batch (one constant value) is left in its own units.
    return torch.where(spread > 0, spread.sqrt(), torch.ones_like(spread)).detach()


def low_level_reconstruction(
    rebuilt: Sequence[Tensor],
    targets: Sequence[Tensor],
    dropped: Sequence[Tensor],
    valid: Sequence[Tensor],
    scale: str,
) -> dict[str, Tensor]:
    """The low-level reconstruction term: the mean over modalities of each one's loss on its dropped steps.

    Args:
        rebuilt: per modality (text, audio, vision), the (B, T, D) reconstruction of the complete view.
        targets: per modality, the complete view's (B, T, D) features.
        dropped: per modality, the (B, T) steps the missing view lost (the only ones scored).
        valid: per modality, the complete view's (B, T) padding mask (for the target's scale).
        scale: ``target_std`` measures each modality in units of its target's spread in the batch (raw
            scales differ by orders of magnitude: MOSI's COVAREP audio against BERT states, so none
            dominates the mean); ``raw`` as TF-Mamba.

    Returns:
        ``rec_low`` (the term) and ``rec_low_<modality>`` (each modality's part, detached, for the logs).
    """
    losses: dict[str, Tensor] = {}
    per_modality = []
    for m, p, t, d, v in zip(MODALITIES, rebuilt, targets, dropped, valid, strict=True):
        if scale == "target_std":
            s = target_scale(t, v)
            p, t = p / s, t / s
        term = masked_reconstruction_loss(p, t, d)
        losses[f"rec_low_{m}"] = term.detach()
        per_modality.append(term)
    return {"rec_low": torch.stack(per_modality).mean(), **losses}
