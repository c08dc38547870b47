"""The batch contract: one definition of what every method receives.

A batch is a plain ``dict`` at runtime (so collation and device transfer just work), typed as :class:`Batch`.

Per modality ``m`` in :data:`MODALITIES`:

- ``m``: float (B, L_m, D_m). Before the protocol: the complete features. After it: the missing view (dropped
  steps zeroed).
- ``m_valid``: bool (B, L_m), the positions that exist (True = a real step). Before the protocol: the
  padding mask. After it, a modality that is wholly absent from a sample has **no** positions (its row is all
  False), so nothing a method derives from positions (attention masks, pooling lengths) depends on how long
  the absent stream was: its duration is information the protocol removed.
- ``m_keep``: bool (B, L_m), present after the protocol (always a subset of ``m_valid``).
- ``m_full``, ``m_valid_full``: the complete view and its padding mask. **Training batches only**: validation
  and test batches never carry them, so no method can peek at what is missing.

Shared keys:

- ``text_ids``: long (B, 3, L_t), BERT (ids, attention mask, segment ids), when the data has them; after the
  protocol dropped tokens are ``[UNK]`` (id 100), and an absent text is the empty sentence ``[CLS] [SEP]``
  (attention on those two positions only), the same for every sample whatever its length. ``text_ids_full``
  holds the complete ids in training batches.
- ``available``: bool (B, 3), modality present at all, in the fixed order (text, audio, vision).
- ``label``: float (B,) for regression or long (B,) for classification.
- ``label_text``, ``label_audio``, ``label_vision``: optional unimodal regression labels (SIMS).
- ``index``: long (B,), the sample's stable id within its split (what the counter-based masks are keyed on).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypedDict, cast

from msabench.core.vocabulary import MODALITIES, MODALITY_LETTERS, Modality

if TYPE_CHECKING:
    # Annotations only (postponed): the contract itself never loads torch, so the core stays torch-free.
    from torch import Tensor

__all__ = [
    "CLS_TOKEN_ID",
    "MODALITIES",
    "MODALITY_LETTERS",
    "SEP_TOKEN_ID",
    "UNK_TOKEN_ID",
    "Batch",
    "Modality",
    "complete_view",
    "full_key",
    "has_complete_view",
    "missing_view",
    "valid_full_key",
]

UNK_TOKEN_ID: Final[int] = 100
CLS_TOKEN_ID: Final[int] = 101
SEP_TOKEN_ID: Final[int] = 102


class Batch(TypedDict, total=False):
    """Keys of a batch; see the module docstring for shapes and meaning."""

    text: Tensor
    audio: Tensor
    vision: Tensor
    text_valid: Tensor
    audio_valid: Tensor
    vision_valid: Tensor
    text_keep: Tensor
    audio_keep: Tensor
    vision_keep: Tensor
    text_full: Tensor
    audio_full: Tensor
    vision_full: Tensor
    text_valid_full: Tensor
    audio_valid_full: Tensor
    vision_valid_full: Tensor
    text_ids: Tensor
    text_ids_full: Tensor
    available: Tensor
    label: Tensor
    label_text: Tensor
    label_audio: Tensor
    label_vision: Tensor
    index: Tensor


def full_key(modality: str) -> str:
    """Key of the complete view of ``modality`` (``text`` -> ``text_full``)."""
    return f"{modality}_full"


def valid_full_key(modality: str) -> str:
    """Key of the complete view's padding mask (``text`` -> ``text_valid_full``)."""
    return f"{modality}_valid_full"


def has_complete_view(batch: Batch) -> bool:
    """Whether the batch carries the complete view (training batches only)."""
    return any(full_key(m) in batch for m in MODALITIES)


def complete_view(batch: Batch) -> Batch:
    """The batch with every modality replaced by its complete view, everything present.

    Teachers and self-distillation run their complete-modality pass on this. Only valid on training batches.

    Raises:
        KeyError: the batch carries no complete view (validation and test batches never do).
    """
    if not has_complete_view(batch):
        raise KeyError("this batch carries no complete view: only training batches do")
    view: Batch = dict(batch)  # type: ignore[assignment]
    for m in MODALITIES:
        valid = batch.get(valid_full_key(m), batch[f"{m}_valid"])  # type: ignore[literal-required]
        view[m] = batch[full_key(m)]  # type: ignore[literal-required]
        view[f"{m}_valid"] = valid  # type: ignore[literal-required]
        view[f"{m}_keep"] = valid  # type: ignore[literal-required]
    if "text_ids_full" in batch:
        view["text_ids"] = batch["text_ids_full"]
    view["available"] = batch["available"].new_ones(batch["available"].shape)
    return view


def dropped_steps(batch: Batch, modality: str) -> Tensor:
    """(B, T) bool: the steps of ``modality`` the missing view lost (training batches only).

    A step is dropped where it exists in the complete view and the protocol did not keep it; for a modality
    that is absent from a sample, that is each of its complete steps (the missing view's own padding mask has
    no positions there). Reconstruction losses target exactly these steps.

    Raises:
        KeyError: the batch carries no complete view (validation and test batches never do).
    """
    if not has_complete_view(batch):
        raise KeyError("this batch carries no complete view: only training batches do")
    steps = cast("dict[str, Tensor]", batch)
    valid = steps.get(valid_full_key(modality), steps[f"{modality}_valid"])
    return valid & ~steps[f"{modality}_keep"]


def missing_view(batch: Batch) -> Batch:
    """The batch without its complete view: what ``forward`` may see."""
    return {k: v for k, v in batch.items() if not k.endswith("_full")}  # type: ignore[return-value]
