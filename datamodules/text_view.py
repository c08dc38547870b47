"""The text view: what a removed word may leave behind, and how the data layer removes it (docs/text-view.md).

Stored text features computed over the whole sentence (MMSA's BERT ``text``) are **contextual**: every token's
vector encodes its neighbours, and the ``[CLS]``/``[SEP]`` vectors summarise the sentence. Zeroing a dropped
token's vector leaves the word readable in every kept vector. So where a protocol or training policy drops
tokens from contextual text, the missing view's ``text`` is recomputed by the frozen encoder the features came
from, on the ``[UNK]``-substituted ids, on the batch's device; dropped positions are then zeroed as for any
modality. A run's text view is one of:

- ``reencoded``: every text feature a method sees comes from the encoder (the complete view too, so the two
  views differ only by what was dropped);
- ``intact``: the stored features, and nothing in the run (its policy, its validation and test settings)
  drops a token from a present text (whole modalities only): nothing can leak, so the leaderboard pools it
  with ``reencoded``;
- ``stored``: the stored features, token drops zeroed in place (leaks the dropped words; only by name);
- ``noncontextual``: the dataset's text is token-wise (nothing to leak).

The label says what happened, not what was asked: ``--text-view stored`` on a run that drops no token is
``intact``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import torch
from torch import Tensor, nn

from msabench.core.vocabulary import TEXT_VIEW_CHOICES, TextViewName
from msabench.datamodules.bert_mask import bert_attention_mask
from msabench.datamodules.cache import cache_root, load_split_cache
from msabench.errors import ConfigError, DatasetNotFoundError, UnknownNameError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from msabench.datamodules.base import LoadedData

# Below this mean cosine, the local encoder is not the one the stored features were made with.
AGREEMENT_WARNING: Final[float] = 0.99
WHERE_BERT_COMES_FROM: Final[str] = (
    "a local directory with the BERT the features were extracted with (config.json and weights: "
    "bert-base-uncased for MOSI/MOSEI, bert-base-chinese for SIMS, saved beforehand with transformers' "
    "save_pretrained or downloaded from the Hugging Face hub); nothing is downloaded at run time"
)


def resolve_text_view(
    requested: str,
    *,
    dataset: str,
    contextual: bool,
    has_ids: bool,
    encoder_path: str | None,
    drops_tokens: bool,
) -> TextViewName:
    """Decide a run's text view, refusing the leak unless the stored view is asked for by name.

    Args:
        requested: ``auto`` (re-encode when an encoder is known), ``reencoded`` or ``stored``.
        dataset: the dataset name, for messages.
        contextual: the stored text features are contextual.
        has_ids: the data carries token ids (``text_bert``).
        encoder_path: the local encoder directory (the user's ``--bert-path`` or the one the data ships).
        drops_tokens: the run's training policy or one of its validation/test settings drops tokens.

    Raises:
        UnknownNameError: an unknown view.
        ConfigError: token drops on contextual text with no way to re-encode it, or ``reencoded`` asked for
            without an encoder or token ids.
    """
    requested = str(requested).strip().lower()
    if requested not in TEXT_VIEW_CHOICES:
        raise UnknownNameError("text view (data.text_view)", requested, TEXT_VIEW_CHOICES)
    if not contextual:
        return "noncontextual"
    if requested == "reencoded" and (encoder_path is None or not has_ids):
        raise ConfigError(_cannot_reencode(dataset, has_ids, drops_tokens))
    if requested != "stored" and encoder_path is not None and has_ids:
        return "reencoded"
    if not drops_tokens:  # nothing dropped from a present text: the stored features are exact, nothing leaks
        return "intact"
    if requested == "stored":
        return "stored"
    if not has_ids:
        raise ConfigError(
            f"{dataset}'s stored text features are contextual and come without token ids, so dropped "
            "tokens cannot be re-encoded: test whole-modality removal (--protocol inter) with a policy that "
            "drops no tokens, or keep the stored view, which leaks the dropped words, by name: "
            "--text-view stored"
        )
    raise ConfigError(
        f"{dataset}'s stored text features are contextual (BERT states of the whole sentence), so dropping "
        "tokens from them leaves the dropped words in every kept vector; give the encoder to re-encode the "
        f"damaged sentence with --bert-path DIR ({WHERE_BERT_COMES_FROM}), or keep the leaky stored view by "
        "name: --text-view stored"
    )


def _cannot_reencode(dataset: str, has_ids: bool, drops_tokens: bool) -> str:
    """Why ``--text-view reencoded`` cannot be had, and what to do instead (one line)."""
    if has_ids:
        what = (
            "--text-view reencoded needs the encoder the stored text features were made with: give it with "
            f"--bert-path DIR ({WHERE_BERT_COMES_FROM})"
        )
    else:
        what = f"--text-view reencoded needs token ids to re-encode, and {dataset}'s text comes without them"
    if not drops_tokens:
        what += (
            "; this run drops no token (whole modalities only), so the stored features are exact and leak "
            "nothing: leave --text-view at auto (its rows say text view `intact`)"
        )
    elif not has_ids:
        what += ": test whole-modality removal (--protocol inter) with a policy that drops no tokens"
    return what


class TextReencoder:
    """A frozen Hugging Face text encoder from a local directory, run on id triplets on their device.

    Args:
        path: the directory (``config.json`` and weights).
        chunk_size: rows encoded at once (bounds the activation memory).

    Raises:
        DatasetNotFoundError: the directory does not exist or holds no model.
    """

    def __init__(self, path: str | Path, chunk_size: int = 256) -> None:
        self.path = Path(path).expanduser()
        if not (self.path / "config.json").is_file():
            raise DatasetNotFoundError(
                f"no text encoder at {self.path} (no config.json): --bert-path takes {WHERE_BERT_COMES_FROM}"
            )
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a run's console is for the user's results, not loading bars
        try:
            model = AutoModel.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise DatasetNotFoundError(f"cannot load the text encoder at {self.path}: {err}") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self._model: PreTrainedModel = model.eval().requires_grad_(False)
        self.chunk_size = chunk_size
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the encoder's config and weights: what the text view depends on."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for file in sorted(p for p in self.path.iterdir() if p.is_file()):
                if file.suffix in (".json", ".safetensors", ".bin"):
                    digest.update(file.name.encode())
                    with open(file, "rb") as handle:
                        while chunk := handle.read(1 << 24):
                            digest.update(chunk)
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    @property
    def hidden_size(self) -> int:
        """Width of the encoder's token features."""
        return int(self._model.config.hidden_size)

    def encode(self, ids: Tensor) -> Tensor:
        """Last-layer token features of id triplets, zero where the attention mask is 0.

        Args:
            ids: (B, 3, L) token ids, attention mask and segment ids, on any device.

        Returns:
            (B, L, D) float32 on the device of ``ids``.
        """
        model = self._on(ids.device)
        ids = ids.long()
        parts = []
        with torch.no_grad():
            for chunk in ids.split(self.chunk_size):
                states = model(
                    input_ids=chunk[:, 0],
                    attention_mask=bert_attention_mask(chunk[:, 1], model),
                    token_type_ids=chunk[:, 2],
                ).last_hidden_state
                parts.append(states.float() * chunk[:, 1, :, None])
        if not parts:
            return torch.zeros(0, ids.shape[2], self.hidden_size, device=ids.device)
        return torch.cat(parts)

    def _on(self, device: torch.device) -> nn.Module:
        if next(self._model.parameters()).device != device:
            # In place (a module moves its own parameters); transformers' wrapper of `to` is typed as unbound.
            self._model.to(device)  # type: ignore[arg-type]
        return self._model


def check_agreement(stored: Tensor, encoded: Tensor, valid: Tensor, *, source: str, encoder: Path) -> float:
    """Mean cosine between stored and re-encoded complete-sentence features at valid tokens; warn if low.

    Args:
        stored: (N, L, D) the stored features.
        encoded: (N, L, D) the encoder's features of the same sentences.
        valid: (N, L) the valid tokens.
        source: the data file, for the message.
        encoder: the encoder directory, for the message.
    """
    cosine = torch.nn.functional.cosine_similarity(stored.float(), encoded.float(), dim=-1)
    agreement = float(cosine[valid].mean()) if bool(valid.any()) else 1.0
    if agreement < AGREEMENT_WARNING:
        warnings.warn(
            f"the text encoder at {encoder} does not reproduce the stored text features of {source} "
            f"(mean cosine {agreement:.3f} over valid tokens): it is not the encoder they were made with. "
            "Every view of this run uses the encoder's features, so the run is consistent, but it does not "
            "read the stored features",
            stacklevel=2,
        )
    return agreement


def encode_complete_text(
    data: LoadedData, encoder: TextReencoder, cache_dir: str | Path | None = None
) -> None:
    """Replace every split's stored text by the encoder's features of the complete sentences.

    Then the complete view, the rows a protocol leaves whole and the re-encoded rows all come from one
    encoder, and differ only by what was dropped. Computed once per (data file, encoder) on the fastest
    device and cached as memory-mapped arrays (``<cache>/reencoded-text/``), so large sets never sit in RAM
    whole.

    Args:
        data: the loaded data (its ``splits`` and ``dims`` are updated in place).
        encoder: the encoder.
        cache_dir: the cache directory (default ``$MSABENCH_CACHE`` or ``~/.cache/msabench``).

    Raises:
        ConfigError: the encoder's width differs from the stored features' (not the encoder that made them).
    """
    if data.dims.text_dim != encoder.hidden_size:
        raise ConfigError(
            f"the text encoder at {encoder.path} makes {encoder.hidden_size}-d features but {data.source} "
            f"stores {data.dims.text_dim}-d text: point --bert-path at the encoder the features were made "
            "with"
        )
    tag = f"{(data.sha256 or 'unhashed')[:16]}_{encoder.fingerprint[:16]}"
    directory = cache_root(cache_dir) / "reencoded-text" / tag
    cached = load_split_cache(directory) if data.sha256 else None
    if cached is None:
        _write_encoded_text(data, encoder, directory)
        cached = load_split_cache(directory)
        assert cached is not None
    for split, columns in data.splits.items():
        columns["text"] = cached[split]["text"]
    data.dims = dataclasses.replace(data.dims, text_dim=encoder.hidden_size)


def _write_encoded_text(data: LoadedData, encoder: TextReencoder, directory: Path) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        for split, columns in data.splits.items():
            ids = columns["text_ids"]
            out = np.lib.format.open_memmap(
                staging / f"{split}.text.npy",
                mode="w+",
                dtype=np.float32,
                shape=(len(ids), ids.shape[2], encoder.hidden_size),
            )
            for start in range(0, len(ids), encoder.chunk_size):
                rows = np.arange(start, min(start + encoder.chunk_size, len(ids)))
                chunk = torch.from_numpy(np.asarray(ids[rows])).to(device)
                encoded = encoder.encode(chunk).cpu()
                if split == "train" and start == 0:
                    check_agreement(
                        torch.from_numpy(np.asarray(columns["text"][rows])),
                        encoded,
                        chunk[:, 1].cpu().bool(),
                        source=data.source,
                        encoder=encoder.path,
                    )
                out[rows[0] : rows[-1] + 1] = encoded.numpy()
            out.flush()
            del out
        (staging / "complete").write_text(json.dumps({split: ["text"] for split in data.splits}))
        os.replace(staging, directory)
    except OSError:
        if not (directory / "complete").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # another process finished first
