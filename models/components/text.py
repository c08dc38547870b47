"""Text input in its two regimes: precomputed token features (the default) or a BERT encoder on token ids.

``features``: the dataset's stored token features (MMSA ``text``: BERT last-layer states, 768-d), with the
missing view's dropped tokens zeroed. ``bert``: a BERT loaded from a local directory (``bert_path``; nothing
is ever downloaded) on the ``text_ids`` triplets, where dropped tokens are ``[UNK]``; frozen or fine-tuned.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from torch import Tensor, nn

from msabench.datamodules.bert_mask import bert_attention_mask
from msabench.errors import ConfigError, DatasetNotFoundError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

TextEncoderName = Literal["features", "bert"]


class TextEncoder(nn.Module):
    """Token features (B, L, D) from either regime."""

    def __init__(
        self, encoder: TextEncoderName, feature_dim: int, bert_path: str | None = None, finetune: bool = True
    ) -> None:
        """Build the encoder.

        Args:
            encoder: ``features`` (use the stored features) or ``bert`` (run BERT on ``text_ids``).
            feature_dim: width of the stored features (used by ``features``).
            bert_path: a local directory with a Hugging Face BERT (config and weights).
            finetune: train BERT's weights; False freezes them (and keeps BERT in eval mode).
        """
        super().__init__()
        self.encoder = encoder
        self.finetune = finetune
        self.bert: nn.Module | None = None
        if encoder == "features":
            self.output_dim = feature_dim
        elif encoder == "bert":
            bert = load_local_bert(bert_path)
            self.bert = bert
            self.output_dim = int(bert.config.hidden_size)
            if not finetune:
                bert.requires_grad_(False)
        else:
            raise ConfigError(f"unknown model.text_encoder '{encoder}': use features or bert")

    def train(self, mode: bool = True) -> TextEncoder:
        """Keep a frozen BERT in eval mode."""
        super().train(mode)
        if self.bert is not None and not self.finetune:
            self.bert.eval()
        return self

    def forward(self, features: Tensor, ids: Tensor | None = None) -> Tensor:
        """Token features of the (missing-view) text.

        Args:
            features: stored token features (B, L, D).
            ids: (B, 3, L) token ids, attention mask and segment ids; required by ``bert``.
        """
        if self.bert is None:
            return features
        if ids is None:
            raise ConfigError("model.text_encoder=bert needs token ids: this dataset has no `text_bert`")
        out = self.bert(
            input_ids=ids[:, 0].long(),
            attention_mask=bert_attention_mask(ids[:, 1], self.bert),
            token_type_ids=ids[:, 2].long(),
        )
        return out.last_hidden_state


def load_local_bert(path: str | None) -> PreTrainedModel:
    """A BERT model from a local directory, never from the network."""
    if not path:
        raise ConfigError(
            "model.text_encoder=bert needs model.bert_path=DIR (a local BERT: config.json and weights)"
        )
    if not Path(path).is_dir():
        raise DatasetNotFoundError(
            f"model.bert_path '{path}' is not a directory with a BERT (config.json, weights)"
        )
    try:
        from transformers import AutoModel
    except ImportError:
        raise ConfigError(
            "model.text_encoder=bert needs transformers: pip install 'msabench[bert]'"
        ) from None
    return AutoModel.from_pretrained(path, local_files_only=True)
