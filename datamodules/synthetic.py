"""Synthetic MSA datasets: deterministic, generated in seconds, written and read as MMSA pickles.

Variants (train / valid / test samples; padded length and feature size per modality, text / audio / vision):

=====================  ================  ==============  ================  ====================
name                   samples           lengths         dims              labels
=====================  ================  ==============  ================  ====================
``synthetic``          1284 / 229 / 686  50 / 375 / 500  768 / 5 / 20      [-3, 3], MOSI-like
``synthetic-mosei``    2000 / 300 / 700  50 / 500 / 500  768 / 74 / 35     [-3, 3], MOSI-like
``synthetic-sims``     1368 / 456 / 457  39 / 400 / 55   768 / 33 / 709    [-1, 1] and unimodal
``synthetic-iemocap``  1200 / 200 / 400  25 / 200 / 50   1024 / 130 / 342  4 classes
=====================  ================  ==============  ================  ====================

``synthetic`` has the shapes and split sizes of MOSI ``unaligned_50.pkl``. ``synthetic-mosei`` has MOSEI's
shapes with about an eighth of its samples (MOSEI: 16326 / 1871 / 4659), so it stays fast (a 1.0 GB pickle).
``synthetic-sims`` has SIMS' shapes and sizes. ``synthetic-iemocap`` has the MMIN IEMOCAP feature sizes
(BERT-large 1024, ComParE 130, DenseFace 342), shorter padded lengths than real utterances and a third of the
corpus; it has no ``text_bert`` (IEMOCAP ships features only) and gives its text lengths in ``text_lengths``.
The option ``n_scale`` multiplies the sample counts (tests use tiny sets); ``data_seed`` picks the data.

Generative model, per sample (one seeded generator, vectorised over samples and steps):

1. **Latents.** A shared latent s, a private latent p_m per modality m, and a complementary pair c_t, c_v, all
   standard normal in R^k (k = 1; k = 2 for IEMOCAP: valence and arousal).
2. **Score.** u = 1.0 s + 0.8 p_t + 0.45 p_a + 0.45 p_v + 0.5 c_t * c_v. Text carries the most; the last term
   is recoverable only from text and vision together (say, words whose meaning the face flips), so fusing
   across modalities has something to win over independent unimodal evidence.
3. **Labels.** MOSI-like: five simulated annotators each rate round(clip(1.6 z + 0.6 e, -3, 3)) with z =
   u/std(u) and e standard normal; the label is their mean, a multiple of 0.2 in [-3, 3] and exactly 0 for
   about 5 % of samples (so Has0 and Non0 differ). SIMS-like: five annotators vote -1, 0 or +1 (0.7 z + 0.5 e,
   dead zone 0.35); the mean is a multiple of 0.2 in [-1, 1]; the unimodal labels apply the same rule to what
   one modality carries (s + w_m p_m). IEMOCAP-like: z = u/std(u) + 0.35 e in R^2; neutral (3) within radius
   0.9, else happy (0) for positive valence, angry (1) for negative valence and positive arousal, sad (2)
   otherwise (about 35 / 16 / 17 / 31 %).
4. **Lengths.** A duration (log-normal, median 4 s, sigma 0.5) sets every modality's valid length with a small
   jitter: 5 text tokens per second, audio and vision at 10 % of their padded length per second (a median
   utterance fills 40 %; about 4 % reach the padded length), so lengths vary and correlate across modalities.
5. **Evidence, sparse in time.** A valid step carries evidence with a probability that gives a median
   utterance about 8 text tokens (6 for IEMOCAP-like text; [CLS] and [SEP] never), 4.5 audio frames and 6
   vision frames. An audio or vision evidence step carries the shared latent (probability 0.8 audio, 0.7
   vision), the private one (0.6) and the complementary one (0.5, vision only), at least one of them, each
   along a fixed random unit direction with amplitude 11 times (1 + 0.25 e). An evidence token is one id, so
   it carries exactly one message, drawn with the odds 0.8 : 0.6 : 0.5 (shared, private, complementary), its
   value 10 (1 + 0.25 e) times the latent. All other steps carry none, so dropping steps removes evidence
   gradually: performance degrades smoothly with a protocol's rate, and a shared latent lost in one modality
   can be recovered from another where private and complementary ones cannot.
6. **Background.** Every valid audio and vision frame has i.i.d. noise (per-dimension standard deviation 1)
   and a per-utterance nuisance vector (0.02, constant in time). Text made without ids (IEMOCAP-like) is built
   the same way per token (noise 0.25), plus a word vector (a token drawn from a 28000-word rank-24
   vocabulary, scale 0.5), rank-16 contextual noise (0.5) and fixed [CLS]/[SEP] vectors.
7. **Heterogeneity.** Each feature dimension is scaled, log-uniformly in [0.3, 1] (text, by the encoder's
   last LayerNorm), [0.01, 100] (audio, as COVAREP mixes features four decades apart) or [0.2, 5] (vision),
   and shifted. Padding is exactly 0 in every modality. About 0.3 % of valid audio frames hold one -inf
   value, as real COVAREP features have.
8. **Text from token ids, contextual.** ``text_bert`` holds [CLS] = 101, the tokens, [SEP] = 102, then
   0-padding, with the attention mask and zero segment ids. Evidence tokens take ids 1000-1191 (1000 + 64 *
   message + a 6-bit quantisation of its value, round(16 tanh(value / 15)) + 32), ordinary words uniform ids
   2000-4095. The stored ``text`` is the last hidden layer of a small BERT on the complete ids (float32,
   padding 0): the variant's text encoder, whose weights follow from (generator version, data seed, variant)
   (:mod:`msabench.datamodules.synthetic_text`). Like real BERT features, every token's vector, [CLS] and
   [SEP] included, also carries the other tokens' evidence, so a dropped word is gone only when the sentence
   is re-encoded with ``[UNK]`` in its place. The encoder is written beside the pickle
   (:func:`encoder_dir`), in the cache and by :func:`export_synthetic`.

Calibration on ``synthetic`` (data seed 0, test split, Has0 Acc-2; chance = 0.522, the share of labels >= 0;
``python tests/datamodules/test_synthetic_text.py`` prints the probe numbers). A ridge-regression proxy on
lf_dnn-style pooled features (text summed over tokens / sqrt(length), audio and vision averaged over the
padded length) reaches 0.719 from text alone, 0.711 audio, 0.711 vision and 0.784 with all three. Under intra
drop at rate r (same r in training and test; dropped words re-encoded as ``[UNK]``) it gives 0.784 / 0.776 /
0.748 / 0.726 / 0.662 / 0.630 at r = 0 / 0.2 / 0.4 / 0.6 / 0.8 / 0.9. On the stored text instead (dropped
tokens zeroed, kept ones still encoding them) it stays at 0.748-0.789 over the same rates: the leak that
re-encoding closes. From text alone at r = 1 (only [CLS] and [SEP] kept), the stored [CLS]/[SEP] vectors
reach 0.720 and the re-encoded ones 0.456. ``lf_dnn`` (``matched``, seed 1111) reaches 0.749 at r = 0 (where
nothing is dropped, so both views agree). At r = 0.9 it reaches 0.625 with the dropped words re-encoded as
``[UNK]`` in training, validation and test, but 0.726 on the stored view: trained there it learns the
dropped words from the kept tokens, the leak again.
"""

from __future__ import annotations

import dataclasses
import pickle
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from msabench.core.batch import CLS_TOKEN_ID, SEP_TOKEN_ID
from msabench.core.io import atomic_write
from msabench.core.vocabulary import MODALITIES
from msabench.datamodules import synthetic_text
from msabench.datamodules.base import LoadedData, MetricFamily, MSADataModule, TrainingPolicy, cache_root
from msabench.datamodules.mmsa import load_mmsa
from msabench.errors import ConfigError, DatasetNotFoundError, UnknownNameError

if TYPE_CHECKING:
    from transformers import BertModel

# Bump when the generator's output changes, so cached pickles of older versions are never reused.
GENERATOR_VERSION: Final[int] = 3
PICKLE_PROTOCOL: Final[int] = 4
CLS_ID: Final[int] = CLS_TOKEN_ID
SEP_ID: Final[int] = SEP_TOKEN_ID


@dataclass(frozen=True)
class ModalityRecipe:
    """How one modality's sequences are generated.

    Attributes:
        length: padded length.
        dim: feature size.
        rate: valid steps per second of utterance (clipped to [``min_length``, ``length``]).
        min_length: shortest valid length.
        events: expected number of evidence steps in a median (4 s) utterance; each valid step carries
            evidence with probability ``events / (4 * rate)``, so longer utterances carry more.
        messages: chance that an evidence step carries the shared, private and complementary latent (each
            independently; at least one).
        gain: evidence amplitude along its unit direction, relative to a noise standard deviation of 1.
        noise: i.i.d. noise standard deviation per dimension.
        structured_noise: standard deviation of a rank-16 per-step noise (contextual embeddings are far from
            isotropic).
        word_scale: size of the per-token word vectors (text only; 0 elsewhere).
        nuisance: standard deviation of the per-utterance constant vector.
        scale_range: per-dimension scales, log-uniform in this range.
    """

    length: int
    dim: int
    rate: float
    min_length: int
    events: float
    messages: tuple[float, float, float]
    gain: float
    noise: float
    structured_noise: float
    word_scale: float
    nuisance: float
    scale_range: tuple[float, float]


@dataclass(frozen=True)
class SyntheticRecipe:
    """A synthetic variant: split sizes, one recipe per modality and the label model (its metric family)."""

    sizes: tuple[int, int, int]
    modalities: tuple[ModalityRecipe, ModalityRecipe, ModalityRecipe]
    metric_family: MetricFamily
    text_ids: bool


MEDIAN_DURATION: Final[float] = 4.0


def _recipe(
    sizes: tuple[int, int, int],
    lengths: tuple[int, int, int],
    dims: tuple[int, int, int],
    family: MetricFamily = "mosi",
) -> SyntheticRecipe:
    # Calibrated on `synthetic` with a ridge proxy and lf_dnn (module docstring). Rates put the median
    # utterance at about 20 tokens and at 40 % of the audio/vision padded length; a few utterances reach the
    # padded length.
    text = ModalityRecipe(
        length=lengths[0],
        dim=dims[0],
        rate=5.0,
        min_length=6,
        events=8.0 if family != "iemocap" else 6.0,
        messages=(0.8, 0.6, 0.5),
        gain=10.0,
        noise=0.25,
        structured_noise=0.5,
        word_scale=0.5,
        nuisance=0.02,
        scale_range=(0.3, 1.0),
    )
    audio = ModalityRecipe(
        length=lengths[1],
        dim=dims[1],
        rate=0.1 * lengths[1],
        min_length=12,
        events=4.5,
        messages=(0.8, 0.6, 0.0),
        gain=11.0,
        noise=1.0,
        structured_noise=0.0,
        word_scale=0.0,
        nuisance=0.02,
        scale_range=(0.01, 100.0),  # COVAREP mixes features four decades apart
    )
    vision = ModalityRecipe(
        length=lengths[2],
        dim=dims[2],
        rate=0.1 * lengths[2],
        min_length=8,
        events=6.0,
        messages=(0.7, 0.6, 0.5),
        gain=11.0,
        noise=1.0,
        structured_noise=0.0,
        word_scale=0.0,
        nuisance=0.02,
        scale_range=(0.2, 5.0),
    )
    return SyntheticRecipe(sizes, (text, audio, vision), family, text_ids=family != "iemocap")


RECIPES: Final[dict[str, SyntheticRecipe]] = {
    "synthetic": _recipe((1284, 229, 686), (50, 375, 500), (768, 5, 20)),
    "synthetic-mosei": _recipe((2000, 300, 700), (50, 500, 500), (768, 74, 35)),
    "synthetic-sims": _recipe((1368, 456, 457), (39, 400, 55), (768, 33, 709), "sims"),
    "synthetic-iemocap": _recipe((1200, 200, 400), (25, 200, 50), (1024, 130, 342), "iemocap"),
}
SYNTHETIC_DATASETS: Final[tuple[str, ...]] = tuple(RECIPES)
SCORE_WEIGHTS: Final[dict[str, float]] = {
    "shared": 1.0,
    "text": 0.8,
    "audio": 0.45,
    "vision": 0.45,
    "interaction": 0.5,
}
EMOTIONS: Final[tuple[str, ...]] = ("happy", "angry", "sad", "neutral")
VOCAB_SIZE: Final[int] = 28000  # words of the text made without token ids (IEMOCAP-like)
WORD_RANK: Final[int] = 24
NOISE_RANK: Final[int] = 16


def generate(
    name: str, seed: int = 0, n_scale: float = 1.0, *, encoder: BertModel | None = None
) -> dict[str, Any]:
    """Generate a synthetic variant as an MMSA-layout dict (``train``/``valid``/``test`` + ``config``).

    Args:
        name: one of :data:`SYNTHETIC_DATASETS`.
        seed: the data seed (the same seed gives byte-identical pickles).
        n_scale: multiplies the sample counts (at least 2 per split).
        encoder: the variant's text encoder (:func:`synthetic_encoder` of the same name and seed), when the
            caller already built it; built here otherwise.

    Raises:
        UnknownNameError: not a synthetic variant.
        ConfigError: ``n_scale`` not positive.
    """
    name = name.lower()
    recipe = get_recipe(name)
    if not n_scale > 0:
        raise ConfigError(f"n_scale must be positive, got {n_scale}")
    sizes = [max(2, round(size * n_scale)) for size in recipe.sizes]
    n = sum(sizes)
    k = 2 if recipe.metric_family == "iemocap" else 1
    world = np.random.default_rng([GENERATOR_VERSION, seed, 0])  # fixed directions, scales, vocabulary
    rng = np.random.default_rng([GENERATOR_VERSION, seed, 1])  # the samples

    latent = {
        key: rng.standard_normal((n, k))
        for key in ("shared", "text", "audio", "vision", "c_text", "c_vision")
    }
    w = SCORE_WEIGHTS
    score = (
        w["shared"] * latent["shared"]
        + w["text"] * latent["text"]
        + w["audio"] * latent["audio"]
        + w["vision"] * latent["vision"]
        + w["interaction"] * latent["c_text"] * latent["c_vision"]
    )
    duration = np.clip(np.exp(np.log(MEDIAN_DURATION) + 0.5 * rng.standard_normal(n)), 0.5, 30.0)
    split: dict[str, Any] = {}
    for modality, m_recipe in zip(MODALITIES, recipe.modalities, strict=True):
        messages = [latent["shared"], latent[modality], latent.get(f"c_{modality}", np.zeros((n, k)))]
        if modality == "text" and recipe.text_ids:
            split["text_bert"] = _token_ids(rng, m_recipe, duration, messages)
            if encoder is None:
                encoder = synthetic_encoder(name, seed)
            split["text"] = synthetic_text.encode(encoder, split["text_bert"])
            continue
        features, lengths = _modality(world, rng, m_recipe, duration, messages, modality)
        split[modality] = features
        split["text_lengths" if modality == "text" else f"{modality}_lengths"] = lengths
    split.update(_labels(rng, recipe.metric_family, score, latent))
    stems = np.char.mod(f"synth{seed}_%05d", np.arange(n))
    split["id"] = np.char.add(stems, "$_$0").astype(object)
    split["raw_text"] = np.char.add("synthetic utterance ", stems).astype(object)

    ends = np.cumsum(sizes)
    out: dict[str, Any] = {
        part: {key: value[end - size : end] for key, value in split.items()}
        for part, size, end in zip(("train", "valid", "test"), sizes, ends, strict=True)
    }
    out["config"] = {
        "generator": "msabench.synthetic",
        "name": name,
        "seed": seed,
        "n_scale": float(n_scale),
        "version": GENERATOR_VERSION,
    }
    return out


def _evidence(
    rng: np.random.Generator,
    recipe: ModalityRecipe,
    duration: np.ndarray,
    messages: list[np.ndarray],
    *,
    boundaries: bool,
    one_message: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Valid lengths, padding mask, evidence steps and their message coefficients.

    Returns:
        lengths (n,), valid (n, length), evidence (n, length) and coef (n, length, 3, k): the value of each
        message an evidence step carries (0 for the messages it does not carry).
    """
    n = len(duration)
    length = recipe.length
    jitter = np.exp(0.1 * rng.standard_normal(n))
    lengths = np.clip(np.rint(duration * jitter * recipe.rate), recipe.min_length, length).astype(np.int64)
    valid = np.arange(length) < lengths[:, None]
    carrier = valid.copy()
    if boundaries:  # [CLS] and [SEP] carry no evidence
        carrier[:, 0] = False
        carrier[np.arange(n), lengths - 1] = False
    evidence_prob = min(1.0, recipe.events / (MEDIAN_DURATION * recipe.rate))
    evidence = carrier & (rng.random((n, length)) < evidence_prob)
    # Each evidence step carries each message independently (at least one: the first drawn if none was); a
    # token (one id) carries exactly one, drawn with the same odds.
    share = np.asarray(recipe.messages) / sum(recipe.messages)
    if one_message:
        carries = rng.choice(3, size=(n, length), p=share)[..., None] == np.arange(3)
    else:
        carries = rng.random((n, length, 3)) < np.asarray(recipe.messages)
        first_message = rng.choice(3, size=(n, length), p=share)
        carries |= ~carries.any(axis=-1, keepdims=True) & (first_message[..., None] == np.arange(3))
    carries &= evidence[..., None]
    amplitude = recipe.gain * (1.0 + 0.25 * rng.standard_normal((n, length, 3))) * carries
    coef = amplitude[..., None] * np.stack(messages, axis=1)[:, None]  # (n, length, 3, k)
    return lengths, valid, evidence, coef


def _token_ids(
    rng: np.random.Generator, recipe: ModalityRecipe, duration: np.ndarray, messages: list[np.ndarray]
) -> np.ndarray:
    """BERT id triplets (n, 3, length): [CLS], ordinary words and evidence tokens, [SEP], 0-padding."""
    lengths, valid, evidence, coef = _evidence(
        rng, recipe, duration, messages, boundaries=True, one_message=True
    )
    n, length = valid.shape
    message = np.argmax(coef[..., 0] != 0, axis=-1)
    value = np.take_along_axis(coef[..., 0], message[..., None], axis=2)[..., 0]
    level = np.clip(np.rint(16 * np.tanh(value / (1.5 * recipe.gain))) + 32, 0, 63).astype(np.int64)
    token = rng.integers(synthetic_text.WORD_FIRST, synthetic_text.VOCAB_SIZE, size=(n, length))
    token = np.where(evidence, synthetic_text.evidence_id(message, level), token)
    steps = np.arange(length)
    token = np.where(steps == 0, CLS_ID, np.where(steps == (lengths - 1)[:, None], SEP_ID, token))
    token = np.where(valid, token, synthetic_text.PAD_TOKEN_ID)
    return np.stack([token, valid.astype(np.int64), np.zeros_like(token)], axis=1)


def _modality(
    world: np.random.Generator,
    rng: np.random.Generator,
    recipe: ModalityRecipe,
    duration: np.ndarray,
    messages: list[np.ndarray],
    modality: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, length, dim) made directly (audio, vision, and text without token ids) and lengths."""
    n, k = messages[0].shape
    length, dim = recipe.length, recipe.dim
    is_text = modality == "text"
    # Fixed per dataset: one unit direction per (message, latent coordinate), per-dimension scale and offset.
    directions = world.standard_normal((3 * k, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    low, high = np.log(recipe.scale_range[0]), np.log(recipe.scale_range[1])
    scale = np.exp(world.uniform(low, high, dim)).astype(np.float32)
    offset = (0.5 * world.standard_normal(dim)).astype(np.float32) * scale

    lengths, valid, _, coef4 = _evidence(
        rng, recipe, duration, messages, boundaries=is_text, one_message=False
    )
    coef = coef4.reshape(n, length, 3 * k)
    basis = directions
    if is_text:  # features without ids (IEMOCAP-like): a word vector per step, fixed boundary vectors
        vocab = world.standard_normal((VOCAB_SIZE, WORD_RANK)).astype(np.float32)
        word_basis = recipe.word_scale * world.standard_normal((WORD_RANK, dim)) / np.sqrt(WORD_RANK)
        special = world.standard_normal((2, dim))
        steps = np.arange(length)
        first = np.broadcast_to(steps == 0, (n, length))
        last = steps == (lengths - 1)[:, None]
        token = rng.integers(0, VOCAB_SIZE, size=(n, length))
        words = vocab[token] * (valid & ~first & ~last)[..., None]
        specials = np.stack([first, last], axis=-1).astype(np.float32)
        coef = np.concatenate([coef, words, specials], axis=-1)
        basis = np.concatenate([directions, word_basis, special], axis=0)

    if recipe.structured_noise > 0:
        context = recipe.structured_noise * rng.standard_normal((n, length, NOISE_RANK)) * valid[..., None]
        coef = np.concatenate([coef, context], axis=-1)
        basis = np.concatenate(
            [basis, world.standard_normal((NOISE_RANK, dim)) / np.sqrt(NOISE_RANK)], axis=0
        )
    x = rng.standard_normal((n, length, dim), dtype=np.float32)
    x *= np.float32(recipe.noise)
    # One 2-D product (BLAS) rather than a stack of n small ones.
    x += (coef.reshape(n * length, -1).astype(np.float32) @ basis.astype(np.float32)).reshape(n, length, dim)
    x += (recipe.nuisance * rng.standard_normal((n, 1, dim))).astype(np.float32)
    x *= scale
    x += offset
    x *= valid[..., None]  # padding is exactly 0
    if modality == "audio":  # COVAREP-like -inf: one dimension of a few valid frames
        hit = valid & (rng.random((n, length)) < 0.003)
        rows, cols = np.nonzero(hit)
        x[rows, cols, rng.integers(0, dim, size=len(rows))] = -np.inf
    return x, lengths


def _annotators(z: np.ndarray, rng: np.random.Generator, family: MetricFamily) -> np.ndarray:
    noise = rng.standard_normal((len(z), 5))
    if family == "sims":
        vote = 0.7 * z[:, None] + 0.5 * noise
        ratings = (vote > 0.35).astype(np.int64) - (vote < -0.35).astype(np.int64)
    else:
        ratings = np.clip(np.rint(1.6 * z[:, None] + 0.6 * noise), -3, 3).astype(np.int64)
    # The mean of five integer ratings is a multiple of 0.2; an exact 0 when they cancel.
    return (ratings.sum(axis=1) / 5.0).astype(np.float32)


def _labels(
    rng: np.random.Generator, family: MetricFamily, score: np.ndarray, latent: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    if family == "iemocap":
        z = score / score.std(axis=0) + 0.35 * rng.standard_normal(score.shape)
        valence, arousal = z[:, 0], z[:, 1]
        label = np.where(valence > 0, 0, np.where(arousal > 0, 1, 2))
        label = np.where(np.hypot(valence, arousal) < 0.9, 3, label).astype(np.int64)
        return {"classification_labels": label, "annotations": np.asarray(EMOTIONS, dtype=object)[label]}
    z = score[:, 0] / score[:, 0].std()
    labels = {"regression_labels": _annotators(z, rng, family)}
    if family == "sims":
        w = SCORE_WEIGHTS
        for modality, key in (("text", "T"), ("audio", "A"), ("vision", "V")):
            alone = w["shared"] * latent["shared"][:, 0] + w[modality] * latent[modality][:, 0]
            labels[f"regression_labels_{key}"] = _annotators(alone / alone.std(), rng, family)
    y = labels["regression_labels"]
    sentiment = (y > 0).astype(np.int64) - (y < 0).astype(np.int64) + 1  # MMSA: 0 Neg, 1 Neu, 2 Pos
    labels["classification_labels"] = sentiment.astype(np.float32)
    labels["annotations"] = np.asarray(("Negative", "Neutral", "Positive"), dtype=object)[sentiment]
    return labels


def get_recipe(name: str) -> SyntheticRecipe:
    """The recipe of a synthetic variant (case-insensitive).

    Raises:
        UnknownNameError: not a synthetic variant.
    """
    try:
        return RECIPES[name.lower()]
    except KeyError:
        raise UnknownNameError("synthetic dataset", name, RECIPES) from None


def write_pickle(data: dict[str, Any], path: str | Path) -> Path:
    """Write an MMSA-layout dict as a pickle, atomically (a concurrent reader never sees half a file)."""
    return atomic_write(path, lambda handle: pickle.dump(data, handle, protocol=PICKLE_PROTOCOL))


def synthetic_encoder(name: str, seed: int = 0) -> BertModel:
    """The text encoder of a synthetic variant: a small BERT set from (generator version, data seed, variant).

    Raises:
        UnknownNameError: not a synthetic variant.
        ConfigError: the variant has no token ids (``synthetic-iemocap``), so its text has no encoder.
    """
    recipe_name = name.lower()
    recipe = get_recipe(recipe_name)
    if not recipe.text_ids:
        raise ConfigError(f"{recipe_name} has no token ids, so its text has no encoder")
    variant = zlib.crc32(recipe_name.encode())
    return synthetic_text.build_encoder([GENERATOR_VERSION, seed, 2, variant], recipe.modalities[0].dim)


def encoder_dir(pickle_path: str | Path) -> Path:
    """The directory of the text encoder that ships beside a synthetic pickle (``x.pkl`` -> ``x.encoder``)."""
    path = Path(pickle_path)
    return path.with_name(f"{path.stem}.encoder")


def export_synthetic(name: str, out: str | Path, seed: int = 0, *, n_scale: float = 1.0) -> Path:
    """Generate a synthetic variant and write it as an MMSA pickle, with its text encoder beside it.

    The encoder (a Hugging Face BERT directory, see :func:`encoder_dir`) is written for the variants with
    token ids, so the text can be re-encoded (``--bert-path DIR``) exactly as it was made.

    Args:
        name: one of :data:`SYNTHETIC_DATASETS`.
        out: the file to write, or an existing directory (then ``<name>_seed<seed>.pkl`` inside it).
        seed: the data seed.
        n_scale: multiplies the sample counts.

    Returns:
        The pickle written.
    """
    recipe_name = name.lower()
    recipe = get_recipe(recipe_name)
    out = Path(out).expanduser()
    if out.is_dir():
        out = out / f"{recipe_name}_seed{seed}.pkl"
    encoder = synthetic_encoder(recipe_name, seed) if recipe.text_ids else None
    data = generate(recipe_name, seed, n_scale, encoder=encoder)
    if encoder is not None:
        synthetic_text.save_encoder(encoder, encoder_dir(out))
    return write_pickle(data, out)


def cached_synthetic(
    name: str, seed: int = 0, n_scale: float = 1.0, cache_dir: str | Path | None = None
) -> Path:
    """The pickle of a synthetic variant in the cache directory, generated on first use.

    Its text encoder is cached beside it (:func:`encoder_dir`); it is written before the pickle, so a
    concurrent run that finds the pickle finds the encoder too.
    """
    recipe_name = name.lower()
    recipe = get_recipe(recipe_name)
    path = (
        cache_root(cache_dir)
        / "synthetic"
        / f"{recipe_name}_seed{seed}_n{n_scale:g}_v{GENERATOR_VERSION}.pkl"
    )
    directory = encoder_dir(path)
    needs_encoder = recipe.text_ids and not synthetic_text.is_encoder_dir(directory)
    if path.is_file() and not needs_encoder:
        return path
    encoder = synthetic_encoder(recipe_name, seed) if recipe.text_ids else None
    if needs_encoder:
        # The weights depend only on (version, seed, variant), so a lost encoder is rebuilt identical.
        synthetic_text.save_encoder(encoder, directory, replace=False)
    if not path.is_file():
        write_pickle(generate(recipe_name, seed, n_scale, encoder=encoder), path)
    return path


class SyntheticDataModule(MSADataModule):
    """A synthetic variant, generated into the cache and read back through the MMSA loader.

    Args:
        name: one of :data:`SYNTHETIC_DATASETS`.
        data_path: read this pickle (e.g. from :func:`export_synthetic`) instead of generating one.
        data_root: unused (accepted so every dataset takes the same arguments).
        data_seed: the data seed (fixed across training seeds, so seeds vary the training only).
        n_scale: multiplies the sample counts (tests use tiny sets).
        variant: ``unaligned``, the only layout generated (each modality at its own rate, as MMSA's
            ``unaligned_50.pkl``); ``aligned`` is refused, since the generator makes no word-aligned copy.
        mmap: memory-map the splits from a ``.npy`` cache (default: pickles of 1 GiB or more, as MMSA files).
        cache_dir: cache directory (default ``$MSABENCH_CACHE`` or ``~/.cache/msabench``).
        **kwargs: see :class:`~msabench.datamodules.base.MSADataModule`.
    """

    def __init__(
        self,
        name: str,
        *,
        data_path: str | Path | None = None,
        data_root: str | Path | None = None,
        data_seed: int = 0,
        n_scale: float = 1.0,
        variant: str = "unaligned",
        mmap: bool | None = None,
        cache_dir: str | Path | None = None,
        train_policy: TrainingPolicy | None,
        validation: Sequence[Any],
        test: Sequence[Any],
        seed: int,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
    ) -> None:
        super().__init__(
            name,
            train_policy=train_policy,
            validation=validation,
            test=test,
            seed=seed,
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )
        self.recipe = get_recipe(name)
        if not n_scale > 0:
            raise ConfigError(f"n_scale must be positive, got {n_scale}")
        if variant != "unaligned":
            raise ConfigError(
                f"{name} has no '{variant}' variant: the synthetic data are generated unaligned only "
                "(data.options.variant=unaligned)"
            )
        self.data_path = data_path
        self.data_seed = data_seed
        self.n_scale = n_scale
        self.mmap = mmap
        self.cache_dir = cache_dir

    def _load(self) -> LoadedData:
        if self.data_path is not None:
            path = Path(self.data_path).expanduser()
            if not path.is_file():
                raise DatasetNotFoundError(
                    f"{self.name} data file not found: tried {path}; write one with msabench.datamodules."
                    f"export_synthetic('{self.name}', PATH) or omit the path to generate it"
                )
        else:
            path = cached_synthetic(self.name, self.data_seed, self.n_scale, self.cache_dir)
        encoder = encoder_dir(path)
        if self.recipe.text_ids and not synthetic_text.is_encoder_dir(encoder):
            raise DatasetNotFoundError(
                f"{self.name} text encoder not found beside {path}: expected {encoder}/ (config.json, "
                f"{synthetic_text.WEIGHTS_FILE}); export_synthetic('{self.name}', PATH) writes both"
            )
        loaded = load_mmsa(
            path, metric_family=self.recipe.metric_family, mmap=self.mmap, cache_dir=self.cache_dir
        )
        # The text of the variants with token ids is the encoder's output on whole sentences (contextual);
        # IEMOCAP-like text, made without ids, is per-token.
        return dataclasses.replace(
            loaded,
            text_contextual=self.recipe.text_ids,
            text_encoder=str(encoder) if self.recipe.text_ids else None,
        )
