"""MITR-DNet's own losses beyond the task and reconstruction: SimSiam attraction, the distillation terms."""

from __future__ import annotations

from torch import Tensor, nn

from msabench.models.mitr_dnet.network import Encoding


def attraction_loss(p_missing: Tensor, z_complete: Tensor, p_complete: Tensor, z_missing: Tensor) -> Tensor:
    """SimSiam attraction per modality, -1/2 [cos(p'_m, z_m) + cos(p_m, z'_m)], batch mean.

    Args:
        p_missing: (B, 3, d) predictions of the missing view.
        z_complete: (B, 3, d) projections of the complete view (stop-gradient).
        p_complete: (B, 3, d) predictions of the complete view.
        z_missing: (B, 3, d) projections of the missing view (stop-gradient).

    Returns:
        (3,) one loss per modality (text, audio, vision).
    """
    cos = nn.functional.cosine_similarity
    return -0.5 * (
        cos(p_missing, z_complete.detach(), dim=-1) + cos(p_complete, z_missing.detach(), dim=-1)
    ).mean(0)


def distillation_losses(student: Encoding, teacher: Encoding) -> dict[str, Tensor]:
    """The three distillation terms, each summed over modalities; nothing is detached, as released.

    ``kd_ts_tf``: sum_m L1(z̄'_m, F), teacher fused -> student unimodal;
    ``kd_ts_mib``: sum_m MSE(z̄'_m, z̄_m), teacher unimodal -> student unimodal;
    ``kd_ss_tf``: sum_m MSE(z̄'_m, F'), student fused -> student unimodal.
    """
    pooled = student.pooled
    return {
        "kd_ts_tf": (pooled - teacher.fused.unsqueeze(1)).abs().mean(dim=(0, 2)).sum(),
        "kd_ts_mib": (pooled - teacher.pooled).pow(2).mean(dim=(0, 2)).sum(),
        "kd_ss_tf": (pooled - student.fused.unsqueeze(1)).pow(2).mean(dim=(0, 2)).sum(),
    }
