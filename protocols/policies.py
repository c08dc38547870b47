"""Training policies: how missingness is drawn while training (``docs/policies.md``).

A policy turns a complete training batch into a new batch with the missing view (``m``, ``m_keep``,
``available``, ``text_ids``) **and** the complete view (``m_full``, ``text_ids_full``) for teachers,
self-distillation and reconstruction. Draws are keyed by ``(run seed, epoch)``, so they change every epoch, do
not depend on the batch composition or on loader workers, and are identical on every device.

Example:
    >>> policy = build_policy("lnln")
    >>> train_batch = policy.apply(batch, seed=1111, epoch=3, split_size=1284, keep_text_boundaries=True)

"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Final

import torch
from torch import Tensor

from msabench.core.batch import Batch
from msabench.core.registry import Registry
from msabench.core.vocabulary import PAPER_POLICY, POLICIES
from msabench.errors import ConfigError
from msabench.protocols.hashing import Key
from msabench.protocols.masks import (
    NOTHING_DROPPED,
    S1_MAX_FRAME_RATE,
    S1_P_MODALITY,
    Plan,
    check_split_size,
    conditions_plan,
    eval_key,
    lnln_plan,
    realise,
    setting_plan,
    stochastic_plan,
    train_key,
)
from msabench.protocols.settings import MISSING_CONDITIONS, Setting

__all__ = ["POLICIES", "TrainingPolicy", "build_policy"]


@dataclass(frozen=True)
class TrainingPolicy(ABC):
    """A training policy; subclasses hold its parameters as frozen dataclass fields."""

    name: ClassVar[str]
    per_setting: ClassVar[bool] = False
    """Whether the policy trains one model per test setting (its runs each name their setting)."""

    @classmethod
    def build(cls, matched: Setting | None, **params: Any) -> TrainingPolicy:
        """The policy with its checked parameters; only ``matched`` needs the test setting ``matched``."""
        return cls(**params)

    @classmethod
    def validation_settings(
        cls, test: Sequence[Setting], *, mask_seed: int, validation_rate: float
    ) -> list[Setting]:
        """The fixed-mask validation settings this policy selects checkpoints on.

        Args:
            test: the run's test settings.
            mask_seed: the seed of the validation masks (the same for every method).
            validation_rate: the intra rate of policies that validate at a fixed rate (``lnln``).

        Returns:
            Complete data by default; each policy that trains under missingness validates under its own.
        """
        return [Setting("complete", mask_seed=mask_seed)]

    def apply(
        self, batch: Batch, *, seed: int, epoch: int, split_size: int, keep_text_boundaries: bool
    ) -> Batch:
        """Draw this policy's missingness for a training batch.

        Args:
            batch: the complete training batch, already on its device.
            seed: the run's seed.
            epoch: the current epoch (draws are re-made every epoch unless the policy is static).
            split_size: number of samples in the training split (``index`` ranges over 0..split_size-1).
            keep_text_boundaries: always keep the first and last valid text positions ([CLS]/[SEP]).

        Returns:
            A new dict with the missing view, ``m_keep``, ``available`` and the complete view (``m_full``,
            ``text_ids_full``); the input is not modified.

        """
        check_split_size(split_size)
        key = self._key(seed, epoch)
        plan = self._plan(key, batch["index"].to(torch.int64), split_size)
        return realise(batch, plan, key, keep_text_boundaries=keep_text_boundaries, complete_view=True)

    @property
    def drops_tokens(self) -> bool:
        """Whether training batches lose some tokens of a present text (contextual text is re-encoded)."""
        return False

    @property
    def fixed_setting(self) -> Setting | None:
        """The evaluation setting whose training-split masks this policy applies in every epoch, if any.

        Such a policy's missing view of a training sample never changes, so its re-encoded text can be made
        once per run; every other policy draws anew and returns None.
        """
        return None

    def describe(self) -> dict[str, Any]:
        """Return the policy's name and parameters, for result rows and run keys."""
        params = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(params.get("matched"), Setting):
            params["matched"] = params["matched"].name
        return {"name": self.name, **params}

    def _key(self, seed: int, epoch: int) -> Key:
        return train_key(seed, epoch)

    @abstractmethod
    def _plan(self, key: Key, index: Tensor, split_size: int) -> Plan: ...


@dataclass(frozen=True)
class CompletePolicy(TrainingPolicy):
    """Train on complete data: nothing dropped (the complete view is still returned)."""

    name: ClassVar[str] = "complete"

    def _plan(self, key: Key, index: Tensor, split_size: int) -> Plan:
        return NOTHING_DROPPED


@dataclass(frozen=True)
class MatchedPolicy(TrainingPolicy):
    """Train under the test setting (P2): the same protocol and point applied to the training split.

    Attributes:
        matched: the setting to apply.
        resample: re-draw the masks every epoch, keyed by (run seed, epoch). By default the masks are drawn
            once for the training split, keyed by ``(matched.mask_seed, "train")`` like an evaluation setting,
            and stay fixed across epochs and training seeds, as in TFR-Net/EMT-DLFR/MITR-DNet.

    """

    name: ClassVar[str] = "matched"
    per_setting: ClassVar[bool] = True
    matched: Setting
    resample: bool = False

    @classmethod
    def build(cls, matched: Setting | None, **params: Any) -> MatchedPolicy:  # noqa: D102
        if matched is None:
            raise ConfigError(
                "policy 'matched' needs the test setting to match, e.g. --protocol intra --rate 0.3"
            )
        return cls(matched=matched, **params)

    @classmethod
    def validation_settings(
        cls, test: Sequence[Setting], *, mask_seed: int, validation_rate: float
    ) -> list[Setting]:
        """The test setting itself: P2 validates at the run's own rate.

        Settings that remove nothing (intra r = 0, inter MR = 0, condition ``tav``) train the same model, so
        one run may take several of them; it trains and validates on the first.
        """
        if len(test) != 1 and not all(s.removes_nothing for s in test):
            raise ConfigError(
                "the matched policy trains one model per test setting: request one setting per run"
            )
        return [test[0]]

    @property
    def drops_tokens(self) -> bool:
        return self.matched.drops_tokens

    @property
    def fixed_setting(self) -> Setting | None:
        return None if self.resample else self.matched

    def _key(self, seed: int, epoch: int) -> Key:
        return train_key(seed, epoch) if self.resample else eval_key(self.matched.mask_seed, "train")

    def _plan(self, key: Key, index: Tensor, split_size: int) -> Plan:
        return setting_plan(self.matched, key, index, split_size)


@dataclass(frozen=True)
class LNLNPolicy(TrainingPolicy):
    """LNLN's policy (P3): per modality, exactly half the split clean, the rest dropped at a rate ~ U(0, 1).

    Attributes:
        static: draw once per run (keyed by the seed only) instead of every epoch, like a mask fixed at
            dataset construction.

    """

    name: ClassVar[str] = "lnln"
    static: bool = False

    @classmethod
    def validation_settings(
        cls, test: Sequence[Setting], *, mask_seed: int, validation_rate: float
    ) -> list[Setting]:
        """Intra at ``validation_rate`` (0.5 by default, as LNLN and TF-Mamba validate)."""
        return [Setting("intra", rate=validation_rate, mask_seed=mask_seed)]

    @property
    def drops_tokens(self) -> bool:
        return True

    def _key(self, seed: int, epoch: int) -> Key:
        return train_key(seed, None if self.static else epoch)

    def _plan(self, key: Key, index: Tensor, split_size: int) -> Plan:
        return lnln_plan(key, index, split_size)


@dataclass(frozen=True)
class ConditionsPolicy(TrainingPolicy):
    """MMIN/IF-MMIN's policy (P1): one of the six missing conditions per sample, uniformly, every epoch."""

    name: ClassVar[str] = "conditions"

    @classmethod
    def validation_settings(
        cls, test: Sequence[Setting], *, mask_seed: int, validation_rate: float
    ) -> list[Setting]:
        """The six missing conditions, pooled (MMIN's condition-replicated validation set)."""
        return [Setting("condition", condition=c, mask_seed=mask_seed) for c in MISSING_CONDITIONS]

    def _plan(self, key: Key, index: Tensor, split_size: int) -> Plan:
        return conditions_plan(key, index)


@dataclass(frozen=True)
class StochasticPolicy(TrainingPolicy):
    """S1 (``docs/policies.md``): random whole-modality drops (never all three) plus frame drops, every epoch.

    Attributes:
        p_modality: probability that each modality is dropped, re-drawn when all three are.
        max_frame_rate: each surviving modality loses frames at a rate ~ U(0, max_frame_rate).

    """

    name: ClassVar[str] = "stochastic"
    p_modality: float = S1_P_MODALITY
    max_frame_rate: float = S1_MAX_FRAME_RATE

    @classmethod
    def validation_settings(
        cls, test: Sequence[Setting], *, mask_seed: int, validation_rate: float
    ) -> list[Setting]:
        """The S1 distribution under fixed masks."""
        return [Setting("stochastic", mask_seed=mask_seed)]

    def __post_init__(self) -> None:
        for field, value in (("p_modality", self.p_modality), ("max_frame_rate", self.max_frame_rate)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"policy 'stochastic': {field} must be a number in [0, 1], got {value!r}")

    @property
    def drops_tokens(self) -> bool:
        return self.max_frame_rate > 0

    def _plan(self, key: Key, index: Tensor, split_size: int) -> Plan:
        return stochastic_plan(key, index, self.p_modality, self.max_frame_rate)


POLICY_CLASSES: Final[Registry[type[TrainingPolicy]]] = Registry("policy")
for _cls in (CompletePolicy, MatchedPolicy, LNLNPolicy, ConditionsPolicy, StochasticPolicy):
    POLICY_CLASSES.add(_cls.name, _cls)
_BOOL_PARAMS: Final[frozenset[str]] = frozenset({"resample", "static"})


def policy_class(name: str) -> type[TrainingPolicy]:
    """The class of the training policy called ``name``: what it knows before it is built.

    Raises:
        UnknownNameError: an unknown policy name (``paper`` included: resolve it first).
    """
    return POLICY_CLASSES.get(name)


def build_policy(name: str, *, matched: Setting | None = None, **params: Any) -> TrainingPolicy:
    """Build the training policy called ``name`` with its parameters.

    Args:
        name: one of :data:`POLICIES` (``paper`` is resolved to one of them by the runner beforehand).
        matched: the test setting; required by ``matched`` and ignored by the other policies, so a caller may
            always pass it.
        **params: the policy's parameters (``resample`` for matched, ``static`` for lnln, ``p_modality`` and
            ``max_frame_rate`` for stochastic).

    Raises:
        UnknownNameError: an unknown policy name.
        ConfigError: ``matched`` without a setting, an unknown parameter or a bad value.

    """
    if name == PAPER_POLICY:
        raise ConfigError(
            f"policy '{PAPER_POLICY}' means the method's own policy from its config.yaml; resolve it to "
            f"one of {', '.join(POLICIES)} before building it"
        )
    cls = POLICY_CLASSES.get(name)
    known = [f.name for f in fields(cls) if f.name != "matched"]
    for param, value in params.items():
        if param not in known:
            valid = ", ".join(known) if known else "none"
            raise ConfigError(f"unknown parameter '{param}' for policy '{name}'; its parameters: {valid}")
        if param in _BOOL_PARAMS and not isinstance(value, bool):
            raise ConfigError(f"policy '{name}': {param} must be true or false, got {value!r}")
    return cls.build(matched, **params)
