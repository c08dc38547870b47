"""DERL as an MSAMethod: the network, its disentanglement and reconstruction losses; the rest is the base's.

L = task + λ_orth L_orth + λ_sim L_sim + λ_low L_rec_low + λ_high L_rec_high + λ_bal L_bal (methods.md §4.4).
The reconstruction terms read the complete view, so they exist in training only; ``forward`` sees the missing
view alone.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor
from torch.nn import functional as F

from msabench.core.batch import MODALITIES, Batch, complete_view, has_complete_view
from msabench.errors import ConfigError
from msabench.models import register
from msabench.models.base import MSAMethod
from msabench.models.components.losses import (
    central_moment_discrepancy,
    difference_loss,
    masked_reconstruction_loss,
)
from msabench.models.components.text import TextEncoder
from msabench.models.derl.network import DERL, DERLOutput


def orthogonality_loss(private: Tensor, shared: Tensor) -> Tensor:
    """Σ_m diff(P_m, S_m) + Σ_{m<n} diff(P_m, P_n) on token-pooled (B, M, H) features.

    ``diff`` is MISA's difference loss (soft orthogonality of batch-centred, row-normalised matrices).
    """
    modalities = range(private.shape[1])
    total = sum(difference_loss(private[:, m], shared[:, m]) for m in modalities)
    total = total + sum(difference_loss(private[:, m], private[:, n]) for m, n in combinations(modalities, 2))
    return total  # type: ignore[return-value]


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


def network_inputs(batch: Batch) -> tuple[Tensor | None, ...]:
    """The network's arguments from a batch: features and valid masks per modality, then the optional ids."""
    return (
        batch["text"],
        batch["text_valid"],
        batch["audio"],
        batch["audio_valid"],
        batch["vision"],
        batch["vision_valid"],
        batch.get("text_ids"),
    )


@register("derl")
class DERLMethod(MSAMethod):
    """DERL (Li et al., arXiv 2602.01833), trained under the LNLN policy its authors' family uses (P3)."""

    paper_policy = "lnln"

    def build_network(self, model_cfg: DictConfig, dims: Any) -> DERL:
        if self.cfg.loss.rec_low_scale not in ("target_std", "raw"):
            raise ConfigError(
                f"unknown loss.rec_low_scale '{self.cfg.loss.rec_low_scale}': use target_std or raw"
            )
        return DERL(
            text_encoder=TextEncoder(
                model_cfg.text_encoder, dims.text_dim, model_cfg.bert_path, model_cfg.bert_finetune
            ),
            audio_dim=dims.audio_dim,
            vision_dim=dims.vision_dim,
            output_dim=self.output_dim,
            hidden=model_cfg.hidden,
            n_tokens=model_cfg.n_tokens,
            encoder_layers=model_cfg.encoder_layers,
            encoder_heads=model_cfg.encoder_heads,
            encoder_ff=model_cfg.encoder_ff,
            compressor=model_cfg.compressor,
            n_shared_experts=model_cfg.n_shared_experts,
            router_top_k=model_cfg.router_top_k,
            dropout=model_cfg.dropout,
            decoder_dropout=model_cfg.decoder_dropout,
            low_level_input=model_cfg.low_level_input,
            fusion_text_shared=model_cfg.fusion_text_shared,
        )

    def _run(self, batch: Batch) -> DERLOutput:
        return self.network(*network_inputs(batch))

    def _prediction(self, out: DERLOutput) -> Tensor:
        return out.prediction if self.is_classification else out.prediction.squeeze(-1)

    def forward(self, batch: Batch) -> Tensor:
        return self._prediction(self._run(batch))

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        weights = self.cfg.loss
        out = self._run(batch)
        private, shared = out.private.mean(dim=2), out.shared.mean(dim=2)
        parts = {
            "task": self.task_loss(self._prediction(out), batch["label"]),
            "orth": orthogonality_loss(private, shared),
            "sim": shared_alignment_loss(shared, int(weights.cmd_moments)),
            "balance": router_balance_loss(out.router),
        }
        if has_complete_view(batch):
            parts.update(self._reconstruction_losses(batch, out))
        scale = {
            "orth": weights.lambda_orth,
            "sim": weights.lambda_sim,
            "rec_low": weights.lambda_rec_low,
            "rec_high": weights.lambda_rec_high,
            "balance": weights.lambda_balance,
        }
        parts["loss"] = parts["task"] + sum(float(scale[k]) * parts[k] for k in scale if k in parts)
        return parts

    def _reconstruction_losses(self, batch: Batch, out: DERLOutput) -> dict[str, Tensor]:
        """Both levels against the complete view, encoded without gradients (a target, as in TF-Mamba)."""
        weights = self.cfg.loss
        uses_bert = self.network.text_encoder.bert is not None
        losses: dict[str, Tensor] = {}
        complete = complete_view(batch)
        target = None
        if float(weights.lambda_rec_high) > 0 or uses_bert:
            with torch.no_grad():
                target = self.network.encode(*network_inputs(complete))
        if float(weights.lambda_rec_low) > 0:
            # The complete padding mask: an absent modality has no positions in the missing view's
            # ``m_valid``, yet every complete step of it is a step the missing view lost.
            dropped = tuple(complete[f"{m}_valid"] & ~batch[f"{m}_keep"] for m in MODALITIES)  # type: ignore
            raw = [complete[m] for m in MODALITIES]  # type: ignore[literal-required]
            if target is not None:  # the complete view's text features (a no-grad BERT pass with `bert`)
                raw[0] = target.text_features
            rebuilt = self.network.reconstruct_low(out.encoded, dropped)  # type: ignore[arg-type]
            scales: list[Tensor | None] = [None, None, None]
            if weights.rec_low_scale == "target_std":
                # Raw scales differ by orders of magnitude (MOSI's COVAREP audio against BERT states):
                # each modality is measured in units of its own spread, so none dominates the mean.
                valid = [complete[f"{m}_valid"] for m in MODALITIES]  # type: ignore[literal-required]
                scales = [target_scale(t, v) for t, v in zip(raw, valid, strict=True)]
            per_modality = []
            for m, p, t, d, scale in zip(MODALITIES, rebuilt, raw, dropped, scales, strict=True):
                term = (
                    masked_reconstruction_loss(p, t, d)
                    if scale is None
                    else masked_reconstruction_loss(p / scale, t / scale, d)
                )
                losses[f"rec_low_{m}"] = term.detach()
                per_modality.append(term)
            losses["rec_low"] = torch.stack(per_modality).mean()
        if float(weights.lambda_rec_high) > 0 and target is not None:
            rebuilt_tokens = self.network.reconstruct_high(out.private, out.shared)
            losses["rec_high"] = F.mse_loss(rebuilt_tokens, target.tokens)
        return losses
