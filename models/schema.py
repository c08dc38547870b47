"""The ``model`` keys every method shares, as a torch-free schema a method's ``config_schema`` extends.

It lives apart from :mod:`msabench.models.base` (which loads torch and Lightning) so that the command line
can type-check a run's config, model block included, before either loads (:mod:`msabench.preflight`).
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class TextEncoderConfig:
    """The ``model`` keys of the text encoder every method has: a method's ``config_schema`` extends this.

    Attributes:
        text_encoder: ``features`` (the stored text states) or ``bert`` (a local BERT on the token ids).
        bert_path: the local BERT directory, with ``bert``.
        bert_finetune: whether the BERT is fine-tuned, with ``bert``.
    """

    text_encoder: str = MISSING
    bert_path: str | None = MISSING
    bert_finetune: bool = MISSING
