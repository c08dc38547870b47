"""Missingness draws and their application to a batch (``docs/protocols.md``).

Every draw is a pure function of a key (see :mod:`msabench.protocols.hashing`), the samples' ``index``
and, for split-level draws, the split size: masks do not depend on batch size, batch order or device, and
are nested across rates. A draw is described by a :class:`Plan` (which modalities are available, and each
modality's frame-drop rate as an integer threshold, scalar or per sample); :func:`realise` applies it.

Whole-modality removal: the modality's features are zeroed at every step, its ``m_keep`` and ``m_valid``
are all False (an absent stream has no positions: its length is removed too) and ``available`` is False.
An absent text's ids are the empty sentence ``[CLS] [SEP]`` with attention on those two positions, the same
for every sample (the anchors' code keeps the attention mask of the [UNK]-substituted sentence, which tells
a text encoder how long the removed sentence was).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

import torch
from torch import Tensor

from msabench.core.batch import CLS_TOKEN_ID, SEP_TOKEN_ID, UNK_TOKEN_ID, Batch
from msabench.core.vocabulary import MISSING_CONDITIONS, MODALITIES, PROTOCOL_NAMES, SPLITS
from msabench.errors import ConfigError, UnknownNameError
from msabench.protocols.hashing import (
    DOMAIN_EVAL,
    DOMAIN_TRAIN,
    DOMAIN_TRAIN_STATIC,
    ONE,
    UNIFORM_BITS,
    Key,
    hash24,
    hash32,
    rank_within,
    scaled_threshold,
    threshold,
)
from msabench.protocols.settings import Setting

_SPLIT_IDS: Final[dict[str, int]] = {split: i for i, split in enumerate(SPLITS)}

# One stream per kind of draw, so that e.g. the frames of a sample and its per-sample rate are independent.
STREAM_FRAMES: Final[int] = 1
STREAM_INTER_PROTECTED: Final[int] = 2
STREAM_INTER_SCORE: Final[int] = 3
STREAM_LNLN_CLEAN: Final[int] = 4
STREAM_LNLN_RATE: Final[int] = 5
STREAM_CONDITION: Final[int] = 6
STREAM_S1_DROP: Final[int] = 7
STREAM_S1_FALLBACK: Final[int] = 8
STREAM_S1_RATE: Final[int] = 9

# S1 defaults (docs/policies.md); also the distribution of the `stochastic` evaluation setting.
S1_P_MODALITY: Final[float] = 0.3
S1_MAX_FRAME_RATE: Final[float] = 0.9
# Candidate modality-drop draws per sample: all three are dropped with probability 0.3^3 = 0.027 per
# candidate, so eight candidates all fail with probability ~3e-13 and the fallback practically never decides.
_S1_CANDIDATES: Final[int] = 8

Threshold = int | Tensor  # a scalar threshold, or one per sample (B,)


def eval_key(mask_seed: int, split: str) -> Key:
    """Key of the fixed masks of an evaluation setting (shared by every method and every run)."""
    check_split(split)
    return (DOMAIN_EVAL, mask_seed, _SPLIT_IDS[split])


def train_key(seed: int, epoch: int | None) -> Key:
    """Key of a training draw: per epoch, or static across epochs when ``epoch`` is None."""
    return (DOMAIN_TRAIN, seed, epoch) if epoch is not None else (DOMAIN_TRAIN_STATIC, seed)


def check_split(split: str) -> None:
    """Raise an error naming the valid splits when ``split`` is not one of them."""
    if split not in _SPLIT_IDS:
        raise UnknownNameError("split", split, SPLITS)


def check_split_size(split_size: int) -> None:
    """Raise an error when the split size cannot be one."""
    if int(split_size) < 1:
        raise ConfigError(f"split_size must be the number of samples in the split (>= 1), got {split_size}")


@dataclass(frozen=True)
class Plan:
    """What a draw removes, before it is realised on the batch's steps.

    Attributes:
        available: (B, 3) bool, modality present at all (text, audio, vision); None means all present.
        thresholds: per modality, the frame-drop threshold in 24-bit units (0 = keep all, 2^24 = drop all), a
            Python int for all samples or an int64 (B,) tensor per sample.

    """

    available: Tensor | None
    thresholds: tuple[Threshold, Threshold, Threshold]


NOTHING_DROPPED: Final[Plan] = Plan(available=None, thresholds=(0, 0, 0))


# --- plans --------------------------------------------------------------------------------------------------


def intra_plan(rate: float) -> Plan:
    """Operator E at one rate for all three modalities (P2, P3 test, P5)."""
    t = threshold(rate)
    return Plan(available=None, thresholds=(t, t, t))


def condition_plan(condition: str, index: Tensor) -> Plan:
    """Give every sample the same available modalities, e.g. ``"ta"`` (P1/P4/A1)."""
    row = _availability_table((condition,), index.device)
    return Plan(available=row.repeat(index.shape[0], 1), thresholds=(0, 0, 0))


def inter_plan(key: Key, index: Tensor, split_size: int, rate: float) -> Plan:
    """Sample-level missing rate MR (P6): remove exactly round(MR * 3N) (sample, modality) pairs of the split.

    The count is rounded half up (MR = 0.5 over 101 samples removes 152 of the 303 pairs).

    Each sample has one protected modality (drawn by hash); the other 2N pairs are ranked by a hash score and
    the lowest k removed. The ranking does not depend on MR, so masks are nested across MR, and at least one
    modality per sample survives for any MR <= 2/3.
    """
    # round half up; the epsilon keeps a tie such as 0.7 * 15 = 10.499999999999998 a tie
    removed_pairs = min(math.floor(rate * 3 * split_size + 0.5 + 1e-9), 2 * split_size)
    ranks = _inter_ranks(key, split_size, index.device)
    return Plan(available=ranks[index] >= removed_pairs, thresholds=(0, 0, 0))


def conditions_plan(key: Key, index: Tensor) -> Plan:
    """One of the six missing conditions per sample, uniformly (the P1 training policy)."""
    choice = (hash24((*key, STREAM_CONDITION), index) * len(MISSING_CONDITIONS)) >> UNIFORM_BITS
    return Plan(available=_availability_table(MISSING_CONDITIONS, index.device)[choice], thresholds=(0, 0, 0))


def lnln_plan(key: Key, index: Tensor, split_size: int) -> Plan:
    """LNLN training (P3): per modality exactly floor(N/2) clean samples, the others at a rate ~ U(0, 1)."""
    clean = _lnln_ranks(key, split_size, index.device)[index] < split_size // 2
    # The 24-bit draw of the rate is its own threshold: bits < rate_bits  <=>  u < rate.
    rates = hash24((*key, STREAM_LNLN_RATE), index, 3)
    thresholds = torch.where(clean, 0, rates)
    return Plan(available=None, thresholds=(thresholds[:, 0], thresholds[:, 1], thresholds[:, 2]))


def stochastic_plan(
    key: Key, index: Tensor, p_modality: float = S1_P_MODALITY, max_frame_rate: float = S1_MAX_FRAME_RATE
) -> Plan:
    """S1: each modality dropped with ``p_modality`` (never all three), survivors lose frames at U(0, max)."""
    batch_size = index.shape[0]
    candidates = hash24((*key, STREAM_S1_DROP), index, 3 * _S1_CANDIDATES).view(batch_size, _S1_CANDIDATES, 3)
    kept = candidates >= threshold(p_modality)
    valid = kept.any(dim=2)
    # The first candidate with a survivor is exactly rejection sampling ("re-draw if all three are dropped").
    first = valid & (valid.cumsum(dim=1) == 1)
    available = (kept & first[:, :, None]).any(dim=1)
    fallback = (hash24((*key, STREAM_S1_FALLBACK), index) * 3) >> UNIFORM_BITS
    fallback_row = torch.nn.functional.one_hot(fallback, 3).bool()
    available = torch.where(valid.any(dim=1, keepdim=True), available, fallback_row)
    rates = scaled_threshold(hash24((*key, STREAM_S1_RATE), index, 3), max_frame_rate)
    return Plan(available=available, thresholds=(rates[:, 0], rates[:, 1], rates[:, 2]))


def setting_plan(setting: Setting, key: Key, index: Tensor, split_size: int) -> Plan:
    """Plan an evaluation setting (or the ``matched`` training policy) under ``key``."""
    match setting.protocol:
        case "complete":
            return NOTHING_DROPPED
        case "intra":
            return intra_plan(float(setting.rate))  # type: ignore[arg-type]
        case "inter":
            return inter_plan(key, index, split_size, float(setting.rate))  # type: ignore[arg-type]
        case "condition":
            return condition_plan(str(setting.condition), index)
        case "stochastic":
            return stochastic_plan(key, index)
        case _:  # Setting validates its protocol; this guards against one built around __post_init__
            raise UnknownNameError("protocol", str(setting.protocol), PROTOCOL_NAMES)


@functools.lru_cache(maxsize=16)
def _availability_table(conditions: tuple[str, ...], device: torch.device) -> Tensor:
    """Availability rows (len(conditions), 3), made once per device rather than copied to it per batch."""
    return torch.tensor([[letter in c for letter in "tav"] for c in conditions], device=device)


@functools.lru_cache(maxsize=16)
def _inter_ranks(key: Key, split_size: int, device: torch.device) -> Tensor:
    """Rank the (sample, modality) pairs of the split in removal order, protected pairs last: (N, 3)."""
    everyone = torch.arange(split_size, device=device)
    protected = (hash24((*key, STREAM_INTER_PROTECTED), everyone) * 3) >> UNIFORM_BITS
    scores = hash32((*key, STREAM_INTER_SCORE), everyone, 3)
    scores = torch.where(torch.nn.functional.one_hot(protected, 3).bool(), 1 << 32, scores)
    return rank_within(scores.flatten()).view(split_size, 3)


@functools.lru_cache(maxsize=16)
def _lnln_ranks(key: Key, split_size: int, device: torch.device) -> Tensor:
    """(N, 3) rank of every sample within its split, independently per modality."""
    everyone = torch.arange(split_size, device=device)
    return rank_within(hash32((*key, STREAM_LNLN_CLEAN), everyone, 3))


# --- realisation --------------------------------------------------------------------------------------------


def text_boundaries(valid: Tensor) -> Tensor:
    """(B, L) bool, True at the first and the last valid position of each row ([CLS] and [SEP])."""
    count = valid.cumsum(dim=1)
    return valid & ((count == 1) | (count == count[:, -1:]))


def frame_keep(valid: Tensor, key: Key, modality: int, index: Tensor, threshold_: Threshold) -> Tensor:
    """(B, L) bool: valid steps whose draw is at or above the threshold (operator E, without boundaries)."""
    if isinstance(threshold_, int):
        if threshold_ <= 0:
            return valid
        if threshold_ >= ONE:
            return torch.zeros_like(valid)
    else:
        threshold_ = threshold_[:, None]
    bits = hash24((*key, STREAM_FRAMES, modality), index, valid.shape[1])
    return valid & (bits >= threshold_)


def realise(batch: Batch, plan: Plan, key: Key, *, keep_text_boundaries: bool, complete_view: bool) -> Batch:
    """Build a new batch holding the missing view of ``plan``; the input is never modified.

    Nothing removed stays readable: dropped steps and padding are zeroed (padding is zeroed even when nothing
    is dropped), padded token ids are 0, and a wholly absent modality has no valid positions at all (its
    ``m_valid`` row is all False; an absent text's ids are the empty sentence ``[CLS] [SEP]``), so its
    length cannot reach a prediction.

    Args:
        batch: the complete batch (``m``, ``m_valid`` per modality, ``index``, optional ``text_ids``).
        plan: what to remove.
        key: the key of the frame draws.
        keep_text_boundaries: always keep the first and last valid text positions ([CLS]/[SEP]).
        complete_view: also return the complete view (``m_full``, ``m_valid_full``, ``text_ids_full``):
            training batches only.

    """
    index = batch["index"].to(torch.int64)
    # Every value of a Batch is a tensor; TypedDict.items() only knows them as objects.
    tensors = cast("Mapping[str, Tensor]", batch)
    out: dict[str, Tensor] = {k: v for k, v in tensors.items() if not k.endswith("_full")}
    available = plan.available
    if available is None:
        available = torch.ones(index.shape[0], 3, dtype=torch.bool, device=index.device)
    boundaries = text_boundaries(batch["text_valid"]) if keep_text_boundaries else None
    for j, modality in enumerate(MODALITIES):
        features, valid = batch[modality], batch[f"{modality}_valid"]  # type: ignore[literal-required]
        intact = plan.available is None and isinstance(plan.thresholds[j], int) and plan.thresholds[j] <= 0
        keep = frame_keep(valid, key, j, index, plan.thresholds[j])
        if modality == "text" and boundaries is not None and not intact:
            keep = keep | boundaries
        exists = valid
        if plan.available is not None:
            keep = keep & available[:, j : j + 1]
            exists = valid & available[:, j : j + 1]
        out[modality] = torch.where(keep[..., None], features, 0)
        out[f"{modality}_keep"] = keep
        out[f"{modality}_valid"] = exists
        if complete_view:
            out[f"{modality}_full"] = features
            out[f"{modality}_valid_full"] = valid
    out["available"] = available
    if "text_ids" in batch:
        out["text_ids"] = _missing_text_ids(batch["text_ids"], batch["text_valid"], out, boundaries)
        if complete_view:
            out["text_ids_full"] = batch["text_ids"]
    return out  # type: ignore[return-value]


def _missing_text_ids(
    ids: Tensor, valid: Tensor, missing: dict[str, Tensor], boundaries: Tensor | None
) -> Tensor:
    """Operator E on id triplets: dropped tokens become [UNK], padding 0, an absent text ``[CLS] [SEP]``."""
    kept = missing["text_keep"] if boundaries is None else missing["text_keep"] | boundaries
    token_ids = torch.where(valid & ~kept, UNK_TOKEN_ID, ids[:, 0])
    attention, segments = ids[:, 1], ids[:, 2]
    token_ids = torch.where(valid, token_ids, 0)
    # Always computed (no `if absent.any()`): a branch on device data would synchronise with the host.
    absent = ~missing["available"][:, :1]
    position = torch.arange(ids.shape[2], device=ids.device)
    empty_ids = torch.where(position == 0, CLS_TOKEN_ID, torch.where(position == 1, SEP_TOKEN_ID, 0))
    token_ids = torch.where(absent, empty_ids, token_ids)
    attention = torch.where(absent, (position < 2).to(attention.dtype), attention)
    segments = torch.where(absent, 0, segments)
    return torch.stack([token_ids, attention, segments], dim=1)


def apply_setting(
    batch: Batch, setting: Setting, *, split: str, split_size: int, keep_text_boundaries: bool
) -> Batch:
    """Apply an evaluation setting, with masks fixed by ``(setting.mask_seed, split)``.

    Returns a new dict with ``m_keep`` and ``available`` added and the missing view written into ``m`` (and
    ``text_ids``); any ``*_full`` keys are dropped, since validation and test batches never carry the complete
    view. The input batch and its tensors are not modified.

    Args:
        batch: the complete batch, already on its device.
        setting: the protocol point and mask seed.
        split: ``train``, ``valid`` or ``test``; part of the mask key.
        split_size: number of samples in the split (``index`` ranges over 0..split_size-1); split-level draws
            (``inter``) depend on it.
        keep_text_boundaries: always keep the first and last valid text positions ([CLS]/[SEP]).

    Raises:
        UnknownNameError: an unknown split.
        ConfigError: a split size below 1.

    """
    check_split_size(split_size)
    key = eval_key(setting.mask_seed, split)
    plan = setting_plan(setting, key, batch["index"].to(torch.int64), split_size)
    return realise(batch, plan, key, keep_text_boundaries=keep_text_boundaries, complete_view=False)
