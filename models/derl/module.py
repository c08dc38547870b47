"""DERL as an MSAMethod: the network, its disentanglement and reconstruction losses; the rest is the base's.

L = task + λ_orth L_orth + λ_sim L_sim + λ_low L_rec_low + λ_high L_rec_high + λ_bal L_bal
(see the method's README).
The reconstruction terms read the complete view, so they exist in training only; ``forward`` sees the missing
view alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from msabench.core.batch import MODALITIES, Batch, complete_view, dropped_steps, has_complete_view
from msabench.datamodules.base import DataDims
from msabench.models import register
from msabench.models.base import MSAMethod
from msabench.models.components.layers import frozen_statistics
from msabench.models.derl.config import LossConfig, ModelConfig
from msabench.models.derl.losses import (
    low_level_reconstruction,
    orthogonality_loss,
    router_balance_loss,
    shared_alignment_loss,
)
from msabench.models.derl.network import DERL, DERLOutput
from msabench.models.schema import BlockSchemas

MODEL_INPUT_KEYS = ("text", "text_valid", "audio", "audio_valid", "vision", "vision_valid")


def network_inputs(batch: Batch) -> dict[str, Any]:
    """The network's arguments from a batch.

    Features and valid masks per modality, the optional ids, and the kept steps (what the input
    normalisation's statistics are taken over).
    """
    kept = None
    if all(f"{m}_keep" in batch for m in MODALITIES):
        kept = tuple(batch[f"{m}_keep"] for m in MODALITIES)  # type: ignore[literal-required]
    return {
        **{key: batch[key] for key in MODEL_INPUT_KEYS},  # type: ignore[literal-required]
        "text_ids": batch.get("text_ids"),
        "kept": kept,
    }


@register("derl")
class DERLMethod(MSAMethod):
    """DERL (Li et al., arXiv 2602.01833), trained under the LNLN policy its authors' family uses (P3)."""

    network: DERL

    paper_policy = "lnln"
    schemas = BlockSchemas(model=ModelConfig, loss=LossConfig)

    def build_network(self, model_cfg: ModelConfig, dims: DataDims) -> DERL:
        text = self.text_encoder(model_cfg, dims)
        return DERL(model_cfg, text, dims.audio_dim, dims.vision_dim, self.output_dim)

    def _run(self, batch: Batch) -> DERLOutput:
        return self.network(**network_inputs(batch))

    def forward(self, batch: Batch) -> Tensor:
        return self.shaped(self._run(batch).prediction)

    def training_loss(self, batch: Batch) -> dict[str, Tensor]:
        weights = self.cfg.loss
        out = self._run(batch)
        private, shared = out.private.mean(dim=2), out.shared.mean(dim=2)
        rec: dict[str, Tensor] = self._reconstruction_losses(batch, out) if has_complete_view(batch) else {}
        terms: dict[str, tuple[float, Tensor]] = {
            "orth": (weights.lambda_orth, orthogonality_loss(private, shared)),
            "sim": (weights.lambda_sim, shared_alignment_loss(shared, weights.cmd_moments)),
            **{k: (weights[f"lambda_{k}"], rec.pop(k)) for k in ("rec_low", "rec_high") if k in rec},
            "balance": (weights.lambda_balance, router_balance_loss(out.router)),
        }
        task = self.task_loss(self.shaped(out.prediction), batch["label"])
        # What is left of ``rec`` are the per-modality low-level terms: logged, not added.
        return {**self.weighted_total({"task": (1.0, task), "regularisers": (1.0, terms)}), **rec}

    def _reconstruction_losses(self, batch: Batch, out: DERLOutput) -> dict[str, Tensor]:
        """Both levels against the complete view, encoded without gradients (a target, as in TF-Mamba)."""
        weights = self.cfg.loss
        uses_bert = self.network.text_encoder.bert is not None
        losses: dict[str, Tensor] = {}
        complete = complete_view(batch)
        target = None
        if weights.lambda_rec_high > 0 or uses_bert:
            # One view's statistics: the complete view would count the batch twice, dropped frames as data.
            with torch.no_grad(), frozen_statistics(self.network):
                target = self.network.encode(**network_inputs(complete))
        if weights.lambda_rec_low > 0:
            dropped = tuple(dropped_steps(batch, m) for m in MODALITIES)
            raw = [complete[m] for m in MODALITIES]  # type: ignore[literal-required]
            if target is not None:  # the complete view's text features (a no-grad BERT pass with `bert`)
                raw[0] = target.text_features
            rebuilt = self.network.reconstruct_low(out.encoded, dropped)  # type: ignore[arg-type]
            valid = [complete[f"{m}_valid"] for m in MODALITIES]  # type: ignore[literal-required]
            losses.update(low_level_reconstruction(rebuilt, raw, dropped, valid, weights.rec_low_scale))
        if weights.lambda_rec_high > 0 and target is not None:
            rebuilt_tokens = self.network.reconstruct_high(out.private, out.shared)
            losses["rec_high"] = F.mse_loss(rebuilt_tokens, target.tokens)
        return losses
