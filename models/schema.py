"""The typed config blocks a method extends, torch-free: a run's whole config is checked before torch loads.

A method's ``config.py`` declares ``ModelConfig`` (extending :class:`TextEncoderConfig`), ``LossConfig``
(extending :class:`LossConfig`: its loss weights) and, when it adds optimiser keys of its own (per-group
learning rates), ``OptimConfig`` (extending :class:`OptimConfig`). Their fields carry no defaults: the values,
with their sources, live in the method's ``config.yaml``. The command line types the composed ``model``,
``loss`` and ``optim`` blocks with them (:mod:`msabench.config.preflight`), so a mistyped or unknown key is
one line before anything is written.

It lives apart from :mod:`msabench.models.base` (which loads torch and Lightning) for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

from omegaconf import MISSING

from msabench.errors import ConfigError


def check_choice(key: str, value: object, choices: tuple[str, ...]) -> None:
    """A config dataclass's value check (run when the block becomes its dataclass, before torch loads).

    Raises:
        ConfigError: ``value`` is not one of ``choices``; the message names the key and the choices.
    """
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not '{value}'")


@dataclass
class TextEncoderConfig:
    """The ``model`` keys of the text encoder every method has: a method's ``ModelConfig`` extends this.

    Attributes:
        text_encoder: ``features`` (the stored text states) or ``bert`` (a local BERT on the token ids).
        bert_path: the local BERT directory, with ``bert``.
        bert_finetune: whether the BERT is fine-tuned, with ``bert``.
    """

    text_encoder: str = MISSING
    bert_path: str | None = MISSING
    bert_finetune: bool = MISSING


@dataclass
class LossConfig:
    """The task loss every method has; a method's ``LossConfig`` extends this with the weights of its terms.

    Attributes:
        regression: the regression task loss, ``l1`` or ``mse`` (classification is cross-entropy).
    """

    regression: str = MISSING


@dataclass
class SchedulerConfig:
    """The epoch-level learning-rate schedule."""

    name: str = MISSING
    n_const: int = MISSING
    n_decay: int = MISSING
    warmup_fraction: float = MISSING


@dataclass
class OptimConfig:
    """The optimiser every method has; a method with groups of its own extends this (their learning rates)."""

    name: str = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    betas: list[float] = MISSING
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    clip_norm_per_submodule: float | None = MISSING


@dataclass(frozen=True)
class BlockSchemas:
    """The dataclasses that type a method's ``model``, ``loss`` and ``optim`` blocks (None: left untyped).

    A block left untyped still has the shared keys typed (those of :class:`LossConfig` and
    :class:`OptimConfig`); keys a method adds to it are then taken as they are written.
    """

    model: type | None = None
    loss: type | None = None
    optim: type | None = None

    @classmethod
    def of_module(cls, module: ModuleType) -> BlockSchemas:
        """The schemas a method's ``config.py`` declares: ``ModelConfig``, ``LossConfig``, ``OptimConfig``."""
        return cls(
            model=getattr(module, "ModelConfig", None),
            loss=getattr(module, "LossConfig", None),
            optim=getattr(module, "OptimConfig", None),
        )

    def items(self) -> list[tuple[str, type]]:
        """The typed blocks, as (block name, dataclass), in config order."""
        blocks = (("model", self.model), ("loss", self.loss), ("optim", self.optim))
        return [(name, schema) for name, schema in blocks if schema is not None]
