"""The synthetic datasets' text encoder: a small BERT whose weights are set by design from a seed, untrained.

Real MMSA ``text`` is BERT's last layer on the complete sentence, so every token's vector also encodes its
neighbours. The synthetic text is made the same way: the token ids carry the evidence, and the stored features
are this encoder's last hidden layer on the complete ids. The encoder ships with each synthetic dataset (a
Hugging Face directory, ``config.json`` + ``model.safetensors``, 37 MB), so a missing view can be re-encoded
from its ``[UNK]``-substituted ids by the very encoder the features came from.

Vocabulary (4096 ids; real BERT's where they matter): ``[PAD]`` 0, ``[UNK]`` 100, ``[CLS]`` 101, ``[SEP]``
102; evidence tokens ``1000 + 64 * message + level`` (message 0 shared, 1 private, 2 complementary; ``level``
a 6-bit quantisation of the value, 32 = 0); ordinary words 2000-4095; the other ids are unused, like BERT's
``[unused*]``. Two layers, twelve heads, hidden size 768 (the variant's text size), feed-forward size 256,
dropout 0.

Design, in a latent basis: every weight is written in coordinates ``z`` of the 767-dimensional subspace
orthogonal to the all-ones vector and rotated into the 768 hidden dimensions by a seeded orthonormal basis, so
LayerNorm (mean removal, then division by the standard deviation) only rescales a token's vector and the
designed channels survive it. Channels of ``z``:

- *message* (3): an evidence token's embedding holds its dequantised value ``(level - 32) / 16`` times
  :data:`EVIDENCE_GAIN` on its message's channel; no other token has anything here, so ordinary words carry
  nothing about the label.
- *salience* (1), *[CLS]* (1), *[SEP]* (1): indicators; *position* (32): sinusoids of the position.
- *context* (3 x 3): written by attention only (below).
- *word* (the other 721): every id's own random vector, plus what the "noise" heads and the feed-forward
  blocks write: word identity, and a nonlinear mix of the neighbours' words.

Layer 1 attention: head 0 attends uniformly to the sentence (zero queries and keys) and head 1 mostly to its
evidence tokens (a constant query against the salience channel); both carry the message channels into their
own context channels. Layer 2: head 0 attends to the neighbourhood of each position (queries and keys on the
position channels) and carries the messages into a third context channel. The other heads have random
queries, keys and values on the word channels and write into them. Feed-forward blocks are small random GELU
maps into the word channels. So every token, [CLS] and [SEP] included, carries the sentence's evidence in its
context channels: a dropped token's value stays in its neighbours' stored vectors, as in real BERT features,
and leaves them only when the sentence is re-encoded with ``[UNK]`` in its place. The last LayerNorm gives
every hidden dimension its own scale (log-uniform in [0.3, 1]) and offset, as real features have.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from msabench.core.batch import CLS_TOKEN_ID, SEP_TOKEN_ID, UNK_TOKEN_ID

if TYPE_CHECKING:
    from transformers import BertModel

PAD_TOKEN_ID: Final[int] = 0
VOCAB_SIZE: Final[int] = 4096
EVIDENCE_FIRST: Final[int] = 1000
LEVELS: Final[int] = 64
MESSAGES: Final[int] = 3
WORD_FIRST: Final[int] = 2000
WORD_COUNT: Final[int] = VOCAB_SIZE - WORD_FIRST
LAYERS: Final[int] = 2
HEADS: Final[int] = 12
INTERMEDIATE: Final[int] = 256
MAX_POSITIONS: Final[int] = 64
WORD_SCALE: Final[float] = 0.3
EVIDENCE_GAIN: Final[float] = 6.0
SALIENCE: Final[float] = 3.0
BOUNDARY: Final[float] = 4.0
POSITION_SCALE: Final[float] = 0.5
POSITION_FREQUENCIES: Final[int] = 16
# Attention logit given to an evidence token by the salience head (exp(3) = 20 times an ordinary word) and to
# the token itself by the local head.
SALIENCE_LOGIT: Final[float] = 3.0
LOCAL_LOGIT: Final[float] = 4.0
# The designed heads, the first heads of their layer: (layer, attention pattern, context channel it writes).
DESIGNED_HEADS: Final[tuple[tuple[int, str, int], ...]] = (
    (0, "uniform", 0),
    (0, "salience", 1),
    (1, "local", 2),
)
# How much each designed head writes into its context channels, and the size of the random parts relative to
# a token's vector (its norm is sqrt(768) after every LayerNorm).
CONTEXT_GAIN: Final[tuple[float, float, float]] = (6.0, 2.0, 1.5)
NOISE_HEAD_GAIN: Final[float] = 0.3
FEED_FORWARD_GAIN: Final[float] = 0.3
SCALE_RANGE: Final[tuple[float, float]] = (0.3, 1.0)
CHUNK_SAMPLES: Final[int] = 256
WEIGHTS_FILE: Final[str] = "model.safetensors"

# Latent channels (indices into z).
_MESSAGE = np.arange(0, 3)
_SALIENCE, _CLS, _SEP = 3, 4, 5
_CONTEXT = (np.arange(6, 9), np.arange(9, 12), np.arange(12, 15))
_POSITION = np.arange(15, 15 + 2 * POSITION_FREQUENCIES)
_WORD_START = 15 + 2 * POSITION_FREQUENCIES


def evidence_id(message: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Token id of an evidence token carrying ``message`` (0-2) at quantisation ``level`` (0-63)."""
    return EVIDENCE_FIRST + LEVELS * message + level


def encoder_weights(seed: Sequence[int], hidden: int) -> dict[str, np.ndarray]:
    """The encoder's weights, keyed like a ``transformers`` ``BertModel`` state dict (float32).

    Args:
        seed: entropy for the weights (the generator passes its version, the data seed and the variant).
        hidden: hidden size (the variant's text feature size).
    """
    if hidden % HEADS:
        raise ValueError(f"the text encoder needs a hidden size divisible by {HEADS}, got {hidden}")
    rng = np.random.default_rng(seed)
    latent = hidden - 1
    # An orthonormal basis of the hidden vectors whose entries sum to 0 (QR of a matrix whose first column is
    # the all-ones vector; its other columns are then orthogonal to it).
    seedling = rng.standard_normal((hidden, hidden))
    seedling[:, 0] = 1.0
    basis = np.linalg.qr(seedling)[0][:, 1:].astype(np.float32)  # (hidden, latent)
    word = np.arange(_WORD_START, latent)
    head_dim = hidden // HEADS

    def to_hidden(z: np.ndarray) -> np.ndarray:  # rows in latent coordinates -> rows in hidden units
        return z.astype(np.float32) @ basis.T

    # Embeddings.
    vocab = np.zeros((VOCAB_SIZE, latent))
    vocab[1:, word] = WORD_SCALE * rng.standard_normal((VOCAB_SIZE - 1, len(word)))  # [PAD] stays 0
    message, level = np.divmod(np.arange(MESSAGES * LEVELS), LEVELS)
    rows = evidence_id(message, level)
    vocab[rows, _MESSAGE[message]] = EVIDENCE_GAIN * (level - LEVELS // 2) / 16.0
    vocab[rows, _SALIENCE] = SALIENCE
    vocab[CLS_TOKEN_ID, _CLS] = BOUNDARY
    vocab[SEP_TOKEN_ID, _SEP] = BOUNDARY
    frequency = np.pi * np.arange(1, POSITION_FREQUENCIES + 1) / (2 * MAX_POSITIONS)
    angle = np.arange(MAX_POSITIONS)[:, None] * frequency
    positions = np.zeros((MAX_POSITIONS, latent))
    positions[:, _POSITION] = POSITION_SCALE * np.concatenate([np.cos(angle), np.sin(angle)], axis=1)

    weights: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": to_hidden(vocab),
        "embeddings.position_embeddings.weight": to_hidden(positions),
        "embeddings.token_type_embeddings.weight": np.zeros((2, hidden)),
        "embeddings.LayerNorm.weight": np.ones(hidden),
        "embeddings.LayerNorm.bias": np.zeros(hidden),
    }
    # LayerNorm divides a token by its norm over sqrt(hidden), so a typical token's norm sets how big a
    # channel is after it. The local head's logit for two tokens d apart is then about
    # LOCAL_LOGIT * mean_f cos(w_f d): LOCAL_LOGIT at d = 0, half of it within about four positions.
    ordinary = np.sqrt(WORD_SCALE**2 * len(word) + POSITION_SCALE**2 * POSITION_FREQUENCIES)
    evident = np.sqrt(ordinary**2 + SALIENCE**2 + (0.5 * EVIDENCE_GAIN) ** 2)
    position_size = POSITION_SCALE * np.sqrt(hidden) / ordinary
    salience_size = SALIENCE * np.sqrt(hidden) / evident
    local_scale = np.sqrt(LOCAL_LOGIT * np.sqrt(head_dim) / POSITION_FREQUENCIES) / position_size
    for layer in range(LAYERS):
        prefix = f"encoder.layer.{layer}."
        query = np.zeros((hidden, latent))  # (head units, latent): torch Linear weights are (out, in)
        key = np.zeros((hidden, latent))
        value = np.zeros((hidden, latent))
        out = np.zeros((latent, hidden))  # (latent, head units)
        query_bias = np.zeros(hidden)
        designed = [head for head in DESIGNED_HEADS if head[0] == layer]
        for head, (_, kind, context) in enumerate(designed):
            units = head * head_dim + np.arange(MESSAGES)
            value[units, _MESSAGE] = 1.0
            out[_CONTEXT[context], units] = CONTEXT_GAIN[context]
            first = head * head_dim
            if kind == "salience":  # a constant query against the salience channel
                query_bias[first] = SALIENCE_LOGIT * np.sqrt(head_dim)
                key[first, _SALIENCE] = 1.0 / salience_size
            elif kind == "local":  # position channels against position channels
                position_units = first + np.arange(len(_POSITION))
                query[position_units, _POSITION] = local_scale
                key[position_units, _POSITION] = local_scale
            # "uniform": zero query and key, so every attended token gets the same weight
        noise_units = np.arange(len(designed) * head_dim, hidden)
        spread = 1.0 / np.sqrt(len(word))
        query[np.ix_(noise_units, word)] = spread * rng.standard_normal((len(noise_units), len(word)))
        key[np.ix_(noise_units, word)] = spread * rng.standard_normal((len(noise_units), len(word)))
        value[np.ix_(noise_units, word)] = spread * rng.standard_normal((len(noise_units), len(word)))
        out[np.ix_(word, noise_units)] = (
            NOISE_HEAD_GAIN * rng.standard_normal((len(word), len(noise_units))) / np.sqrt(len(noise_units))
        )
        up = rng.standard_normal((INTERMEDIATE, latent)) / np.sqrt(latent)
        down = np.zeros((latent, INTERMEDIATE))
        down[word] = (
            FEED_FORWARD_GAIN * rng.standard_normal((len(word), INTERMEDIATE)) / np.sqrt(INTERMEDIATE)
        )
        last = layer == LAYERS - 1
        if last:  # per-dimension scale and offset of the stored features
            low, high = np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1])
            gamma = np.exp(rng.uniform(low, high, hidden))
            beta = 0.5 * rng.standard_normal(hidden) * gamma
        else:
            gamma, beta = np.ones(hidden), np.zeros(hidden)
        weights |= {
            prefix + "attention.self.query.weight": to_hidden(query),
            prefix + "attention.self.query.bias": query_bias,
            prefix + "attention.self.key.weight": to_hidden(key),
            prefix + "attention.self.key.bias": np.zeros(hidden),
            prefix + "attention.self.value.weight": to_hidden(value),
            prefix + "attention.self.value.bias": np.zeros(hidden),
            prefix + "attention.output.dense.weight": basis @ out.astype(np.float32),
            prefix + "attention.output.dense.bias": np.zeros(hidden),
            prefix + "attention.output.LayerNorm.weight": np.ones(hidden),
            prefix + "attention.output.LayerNorm.bias": np.zeros(hidden),
            prefix + "intermediate.dense.weight": to_hidden(up),
            prefix + "intermediate.dense.bias": np.zeros(INTERMEDIATE),
            prefix + "output.dense.weight": basis @ down.astype(np.float32),
            prefix + "output.dense.bias": np.zeros(hidden),
            prefix + "output.LayerNorm.weight": gamma,
            prefix + "output.LayerNorm.bias": beta,
        }
    # The pooler ([CLS] -> tanh(W h + b)) is part of a BertModel; it plays no role in the stored features.
    weights["pooler.dense.weight"] = rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)
    weights["pooler.dense.bias"] = np.zeros(hidden)
    return {name: value.astype(np.float32) for name, value in weights.items()}


def encoder_config(hidden: int) -> dict[str, Any]:
    """The ``transformers`` BERT configuration of the encoder (dropout off: it is a fixed function)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": VOCAB_SIZE,
        "hidden_size": hidden,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": PAD_TOKEN_ID,
        "unk_token_id": UNK_TOKEN_ID,
        "cls_token_id": CLS_TOKEN_ID,
        "sep_token_id": SEP_TOKEN_ID,
    }


def build_encoder(seed: Sequence[int], hidden: int) -> BertModel:
    """The encoder as a ``transformers`` ``BertModel`` in eval mode (see :func:`encoder_weights`)."""
    import torch
    from transformers import BertConfig, BertModel

    weights = _weights(tuple(seed), hidden)
    config = BertConfig(**encoder_config(hidden))
    # Building a model draws its default initialisation from torch's global generator; keep the caller's
    # random state as it was (the weights are replaced right after).
    with torch.random.fork_rng(devices=[]):
        model = BertModel(config)
    model.load_state_dict({name: torch.from_numpy(value) for name, value in weights.items()}, strict=True)
    return model.eval()


@functools.lru_cache(maxsize=2)
def _weights(seed: tuple[int, ...], hidden: int) -> dict[str, np.ndarray]:
    # Tests and a run's cache check build the same encoder several times; load_state_dict copies, so the
    # cached arrays are never written to.
    return encoder_weights(seed, hidden)


def save_encoder(model: BertModel, directory: str | Path, *, replace: bool = True) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory``, atomically.

    The files are written into a staging directory beside ``directory`` and renamed into place, so a
    concurrent reader sees either no directory or a complete one.

    Args:
        model: the encoder.
        directory: where it goes.
        replace: replace an existing ``directory``; False keeps it (a cache: whoever published first wins,
            and every writer writes the same weights).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        # Our own keys, not the live config's: the file does not change with the transformers version.
        config = encoder_config(model.config.hidden_size)
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        state = {name: tensor.contiguous() for name, tensor in sorted(model.state_dict().items())}
        save_file(state, staging / WEIGHTS_FILE, metadata={"format": "pt"})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; the cache is shared like any directory
        _publish(staging, directory, replace)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _publish(staging: Path, directory: Path, replace: bool) -> None:
    try:
        os.rename(staging, directory)
        return
    except OSError:
        if not directory.exists():
            raise
    if not replace:
        return
    # Replace an existing directory: move it aside first (a rename cannot overwrite a non-empty directory).
    old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.old."))
    os.rename(directory, old / "encoder")
    os.rename(staging, directory)
    shutil.rmtree(old, ignore_errors=True)


def is_encoder_dir(directory: str | Path) -> bool:
    """Whether ``directory`` holds a complete encoder (``config.json`` and the weights)."""
    directory = Path(directory)
    return (directory / "config.json").is_file() and (directory / WEIGHTS_FILE).is_file()


def encode(model: BertModel, ids: np.ndarray, chunk: int = CHUNK_SAMPLES, *, out: Any = None) -> Any:
    """The encoder's last hidden layer on BERT id triplets, float32, zero at padding.

    Samples are encoded in chunks of similar length (sorted by length, each chunk cut to its longest
    sentence), so memory stays at one chunk's activations and no time is spent on padding.

    Args:
        model: the encoder.
        ids: (N, 3, L) token ids, attention mask and segment ids.
        chunk: samples per forward pass.
        out: where to write the features instead of a new array: anything indexed as an (N, L, hidden)
            array of zeros (``out[rows, :width] = ...``), such as a memory map.

    Returns:
        (N, L, hidden) features (``out`` when given).
    """
    import torch

    n, _, length = ids.shape
    lengths = ids[:, 1].sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    if out is None:
        out = np.zeros((n, length, model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, n, chunk):
            rows = order[start : start + chunk]
            width = max(int(lengths[rows].max()), 1)
            part = torch.from_numpy(np.ascontiguousarray(ids[rows, :, :width]))
            hidden = model(
                input_ids=part[:, 0], attention_mask=part[:, 1], token_type_ids=part[:, 2]
            ).last_hidden_state
            out[rows, :width] = (hidden * part[:, 1, :, None]).numpy()
    return out
