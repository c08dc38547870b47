"""UMDF's self-distillation terms (README, "What it does"; all [proposed]); the teacher side is detached."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F


def prediction_distillation(
    student: Tensor, teacher: Tensor, classification: bool, temperature: float
) -> Tensor:
    """Prediction-level distillation from ``teacher`` to ``student`` (the teacher is detached here).

    Regression: MSE(ŷ_student, sg(ŷ_teacher)). Classification: τ² · KL(softmax(z_T/τ) ‖ softmax(z_S/τ)),
    averaged over the batch (Hinton et al.'s τ² keeps the gradient scale independent of τ).

    Args:
        student: (B,) or (B, 1) predictions, or (B, C) logits.
        teacher: the same shape as ``student``.
        classification: logits (KL) rather than regression values (MSE).
        temperature: τ of the softened distributions (classification only).
    """
    teacher = teacher.detach()
    if not classification:
        return F.mse_loss(student, teacher)
    log_student = F.log_softmax(student / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher / temperature, dim=-1)
    kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
    return temperature**2 * kl


def representation_distillation(
    student_modality: Tensor,
    student_joint: Tensor,
    teacher_modality: Tensor,
    teacher_joint: Tensor,
    present: Tensor,
) -> Tensor:
    """Representation-level distillation: each present modality's pooled MCIM output and the joint one.

    The sum over the three modalities of MSE(pooled Y_m^student, sg(pooled Y_m^teacher)) plus
    MSE(h^student, sg(h^teacher)). A modality's MSE averages over features and over the samples in which the
    missing view has it: an absent modality has no representation to distil (its pooled output is zeros);
    including it would add a constant with no gradient one way and pull the complete view toward zero the
    other (the [proposed] choice, measured in the method's README). The joint MSE averages over batch and
    features.

    Args:
        student_modality: (B, 3, d) pooled MCIM outputs of the student view.
        student_joint: (B, d') joint representation of the student view.
        teacher_modality: (B, 3, d) the teacher view's, detached here.
        teacher_joint: (B, d') the teacher view's, detached here.
        present: (B, 3) bool, which modalities the missing view has (the same in both directions).
    """
    per_sample = F.mse_loss(student_modality, teacher_modality.detach(), reduction="none").mean(dim=2)
    weight = present.to(per_sample.dtype)
    per_modality = (per_sample * weight).sum(dim=0) / weight.sum(dim=0).clamp_min(1.0)
    return per_modality.sum() + F.mse_loss(student_joint, teacher_joint.detach())
