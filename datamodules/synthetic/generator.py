"""The synthetic generator: the model of :mod:`~msabench.datamodules.synthetic.recipes`, drawn in blocks.

One seeded generator draws every per-sample value, array after array. Generation has two passes: the plan
draws the small per-sample arrays (latents, durations, lengths, labels) whole and notes where each per-step
array starts in the sequence (:mod:`~msabench.datamodules.replay`); the fill replays the per-step arrays block
by block, all in step, and writes each block of features where it belongs. The blocks hold exactly the values
of one whole draw, so the data are the same bytes whatever the block size. The text encoder runs over the ids
in the chunks it always used (sorted by length across splits), each chunk's rows written into their split.

:func:`generate` fills arrays in RAM; :func:`write_synthetic` pickles the set with its large arrays left as
holes (:mod:`~msabench.datamodules.mmsa.pickle_stream`) and fills them in place, so its memory is one block of
samples, the small per-sample arrays and the text ids (about 100 MB at MOSEI's size), not the set.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from msabench.core.vocabulary import MODALITIES, SPLITS
from msabench.datamodules.mmsa.pickle_stream import (
    FRAME_SIZE_TARGET,
    Hole,
    atomic_file,
    write_pickle,
    write_with_holes,
)
from msabench.datamodules.replay import Replay, Stream
from msabench.datamodules.synthetic import text as synthetic_text
from msabench.datamodules.synthetic.recipes import (
    CLS_ID,
    GENERATOR_VERSION,
    MEDIAN_DURATION,
    NOISE_RANK,
    SCORE_WEIGHTS,
    SEP_ID,
    VOCAB_SIZE,
    WORD_RANK,
    ModalityRecipe,
    SyntheticRecipe,
    get_recipe,
    labels,
    split_sizes,
    synthetic_encoder,
)

if TYPE_CHECKING:
    from transformers import BertModel

BLOCK_BYTES: Final[int] = 32 << 20  # the largest feature block a fill step makes


@dataclass
class _ModalityPlan:
    """What the fill needs of one modality: lengths, replays, and the fixed (world) directions and scales."""

    name: str
    recipe: ModalityRecipe
    lengths: np.ndarray
    replays: dict[str, Replay]
    messages: list[np.ndarray]
    ids: bool = False
    world: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.length_key = f"{self.name}_lengths"


def _plan_evidence(
    stream: Stream, recipe: ModalityRecipe, duration: np.ndarray, *, one_message: bool
) -> tuple[np.ndarray, dict[str, Replay]]:
    # Draw order as in the whole-set generator: jitter, evidence steps, messages, amplitudes.
    length = recipe.length
    jitter = np.exp(0.1 * stream.whole(lambda g, s, e: g.standard_normal(e - s)))
    lengths = np.clip(np.rint(duration * jitter * recipe.rate), recipe.min_length, length).astype(np.int64)
    share = np.asarray(recipe.messages) / sum(recipe.messages)
    replays = {"evidence": stream.rows(lambda g, s, e: g.random((e - s, length)))}
    if one_message:
        replays["message"] = stream.rows(lambda g, s, e: g.choice(3, size=(e - s, length), p=share))
    else:
        replays["carries"] = stream.rows(lambda g, s, e: g.random((e - s, length, 3)))
        replays["first"] = stream.rows(lambda g, s, e: g.choice(3, size=(e - s, length), p=share))
    replays["amplitude"] = stream.rows(lambda g, s, e: g.standard_normal((e - s, length, 3)))
    return lengths, replays


def _evidence(
    plan: _ModalityPlan, start: int, stop: int, *, boundaries: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lengths (m,), valid (m, length), evidence (m, length) and coef (m, length, 3, k) of rows start:stop.

    coef holds the value of each message an evidence step carries (0 for the messages it does not carry).
    """
    recipe, replays = plan.recipe, plan.replays
    lengths = plan.lengths[start:stop]
    m, length = stop - start, recipe.length
    valid = np.arange(length) < lengths[:, None]
    carrier = valid.copy()
    if boundaries:  # [CLS] and [SEP] carry no evidence
        carrier[:, 0] = False
        carrier[np.arange(m), lengths - 1] = False
    evidence_prob = min(1.0, recipe.events / (MEDIAN_DURATION * recipe.rate))
    evidence = carrier & (replays["evidence"].rows(start, stop) < evidence_prob)
    # Each evidence step carries each message independently (at least one: the first drawn if none was); a
    # token (one id) carries exactly one, drawn with the same odds.
    if "message" in replays:
        carries = replays["message"].rows(start, stop)[..., None] == np.arange(3)
    else:
        carries = replays["carries"].rows(start, stop) < np.asarray(recipe.messages)
        first_message = replays["first"].rows(start, stop)
        carries |= ~carries.any(axis=-1, keepdims=True) & (first_message[..., None] == np.arange(3))
    carries &= evidence[..., None]
    amplitude = recipe.gain * (1.0 + 0.25 * replays["amplitude"].rows(start, stop)) * carries
    messages = np.stack([message[start:stop] for message in plan.messages], axis=1)
    coef = amplitude[..., None] * messages[:, None]  # (m, length, 3, k)
    return lengths, valid, evidence, coef


def _plan_token_ids(stream: Stream, plan: _ModalityPlan, duration: np.ndarray) -> None:
    plan.lengths, plan.replays = _plan_evidence(stream, plan.recipe, duration, one_message=True)
    length = plan.recipe.length
    plan.replays["token"] = stream.rows(
        lambda g, s, e: g.integers(synthetic_text.WORD_FIRST, synthetic_text.VOCAB_SIZE, size=(e - s, length))
    )


def _token_ids(plan: _ModalityPlan, start: int, stop: int) -> np.ndarray:
    """BERT id triplets (m, 3, length): [CLS], ordinary words and evidence tokens, [SEP], 0-padding."""
    lengths, valid, evidence, coef = _evidence(plan, start, stop, boundaries=True)
    length = valid.shape[1]
    message = np.argmax(coef[..., 0] != 0, axis=-1)
    value = np.take_along_axis(coef[..., 0], message[..., None], axis=2)[..., 0]
    level = np.clip(np.rint(16 * np.tanh(value / (1.5 * plan.recipe.gain))) + 32, 0, 63).astype(np.int64)
    token = plan.replays["token"].rows(start, stop)
    token = np.where(evidence, synthetic_text.evidence_id(message, level), token)
    steps = np.arange(length)
    token = np.where(steps == 0, CLS_ID, np.where(steps == (lengths - 1)[:, None], SEP_ID, token))
    token = np.where(valid, token, synthetic_text.PAD_TOKEN_ID)
    return np.stack([token, valid.astype(np.int64), np.zeros_like(token)], axis=1)


def _plan_features(
    stream: Stream, world: np.random.Generator, plan: _ModalityPlan, duration: np.ndarray
) -> None:
    recipe, k = plan.recipe, plan.messages[0].shape[1]
    length, dim = recipe.length, recipe.dim
    # Fixed per dataset: one unit direction per (message, latent coordinate), per-dimension scale and offset.
    directions = world.standard_normal((3 * k, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    low, high = np.log(recipe.scale_range[0]), np.log(recipe.scale_range[1])
    scale = np.exp(world.uniform(low, high, dim)).astype(np.float32)
    offset = (0.5 * world.standard_normal(dim)).astype(np.float32) * scale
    plan.lengths, plan.replays = _plan_evidence(stream, recipe, duration, one_message=False)
    basis = directions
    if plan.name == "text":  # features without ids (IEMOCAP-like): a word vector per step, fixed boundaries
        plan.world["vocab"] = world.standard_normal((VOCAB_SIZE, WORD_RANK)).astype(np.float32)
        word_basis = recipe.word_scale * world.standard_normal((WORD_RANK, dim)) / np.sqrt(WORD_RANK)
        special = world.standard_normal((2, dim))
        plan.replays["token"] = stream.rows(lambda g, s, e: g.integers(0, VOCAB_SIZE, size=(e - s, length)))
        basis = np.concatenate([directions, word_basis, special], axis=0)
    if recipe.structured_noise > 0:
        plan.replays["context"] = stream.rows(lambda g, s, e: g.standard_normal((e - s, length, NOISE_RANK)))
        basis = np.concatenate(
            [basis, world.standard_normal((NOISE_RANK, dim)) / np.sqrt(NOISE_RANK)], axis=0
        )
    plan.replays["noise"] = stream.rows(
        lambda g, s, e: g.standard_normal((e - s, length, dim), dtype=np.float32)
    )
    plan.replays["nuisance"] = stream.rows(lambda g, s, e: g.standard_normal((e - s, 1, dim)))
    plan.world.update(basis=basis.astype(np.float32), scale=scale, offset=offset)
    if plan.name == "audio":  # COVAREP-like -inf: one dimension of a few valid frames
        hits = np.zeros(stream.n, dtype=np.int64)

        def count(start: int, stop: int, values: np.ndarray) -> None:
            valid = np.arange(length) < plan.lengths[start:stop, None]
            hits[start:stop] = (valid & (values < 0.003)).sum(axis=1)

        plan.replays["hit"] = stream.rows(lambda g, s, e: g.random((e - s, length)), observe=count)
        plan.replays["hit_dim"] = stream.rows(lambda g, s, e: g.integers(0, dim, size=int(hits[s:e].sum())))


def _features(plan: _ModalityPlan, start: int, stop: int) -> np.ndarray:
    """Features (m, length, dim) made directly (audio, vision, and text without token ids)."""
    recipe, replays, world = plan.recipe, plan.replays, plan.world
    m, length = stop - start, recipe.length
    is_text = plan.name == "text"
    lengths, valid, _, coef4 = _evidence(plan, start, stop, boundaries=is_text)
    coef = coef4.reshape(m, length, -1)
    if is_text:
        steps = np.arange(length)
        first = np.broadcast_to(steps == 0, (m, length))
        last = steps == (lengths - 1)[:, None]
        words = world["vocab"][replays["token"].rows(start, stop)] * (valid & ~first & ~last)[..., None]
        specials = np.stack([first, last], axis=-1).astype(np.float32)
        coef = np.concatenate([coef, words, specials], axis=-1)
    if "context" in replays:
        context = recipe.structured_noise * replays["context"].rows(start, stop) * valid[..., None]
        coef = np.concatenate([coef, context], axis=-1)
    x = replays["noise"].rows(start, stop)
    x *= np.float32(recipe.noise)
    # One product per sample (numpy hands each to BLAS), never one over the block's rows: a BLAS picks its
    # kernels by the product's shape, and on some CPUs (AVX-512) a row's result then depends on how many rows
    # the product has, so the data would depend on the generator's block size.
    x += coef.astype(np.float32) @ world["basis"]
    x += (recipe.nuisance * replays["nuisance"].rows(start, stop)).astype(np.float32)
    x *= world["scale"]
    x += world["offset"]
    x *= valid[..., None]  # padding is exactly 0
    if "hit" in replays:
        hit = valid & (replays["hit"].rows(start, stop) < 0.003)
        rows, cols = np.nonzero(hit)
        x[rows, cols, replays["hit_dim"].rows(start, stop)] = -np.inf
    return x


@dataclass
class _Plan:
    """A set before its per-step arrays are drawn: sizes, the small arrays, and one plan per modality."""

    name: str
    recipe: SyntheticRecipe
    sizes: list[int]
    modalities: list[_ModalityPlan]
    small: dict[str, np.ndarray]  # per-sample arrays over the whole set, in the order of the pickle's keys
    config: dict[str, Any]
    block: int

    def layout(self) -> dict[str, Any]:
        """The set as an MMSA-layout dict, every per-step array a :class:`Hole` (its shape and dtype)."""
        out: dict[str, Any] = {}
        ends = np.cumsum(self.sizes)
        for part, size, end in zip(SPLITS, self.sizes, ends, strict=True):
            split: dict[str, Any] = {}
            for plan in self.modalities:
                r = plan.recipe
                if plan.ids:
                    split["text_bert"] = Hole((size, 3, r.length), np.int64)
                    split["text"] = Hole((size, r.length, r.dim), np.float32)
                else:
                    split[plan.name] = Hole((size, r.length, r.dim), np.float32)
                    # One key object for every split, as a dict built once has: the pickle memoises it.
                    split[plan.length_key] = plan.lengths[end - size : end]
            split.update({key: value[end - size : end] for key, value in self.small.items()})
            out[part] = split
        out["config"] = self.config
        return out


def _plan(
    name: str, seed: int, n_scale: float, sizes_option: Sequence[int] | None, block_samples: int | None
) -> _Plan:
    recipe = get_recipe(name)
    sizes = split_sizes(name, n_scale, sizes_option)
    n = sum(sizes)
    k = 2 if recipe.metric_family == "iemocap" else 1
    if block_samples is None:
        per_sample = max(4 * r.length * r.dim for r in recipe.modalities)
        block_samples = max(1, BLOCK_BYTES // per_sample)
    world = np.random.default_rng([GENERATOR_VERSION, seed, 0])  # fixed directions, scales, vocabulary
    stream = Stream(np.random.default_rng([GENERATOR_VERSION, seed, 1]), n, block_samples)  # the samples

    keys = ("shared", "text", "audio", "vision", "c_text", "c_vision")
    latent = {key: stream.whole(lambda g, s, e: g.standard_normal((e - s, k))) for key in keys}
    w = SCORE_WEIGHTS
    score = (
        w["shared"] * latent["shared"]
        + w["text"] * latent["text"]
        + w["audio"] * latent["audio"]
        + w["vision"] * latent["vision"]
        + w["interaction"] * latent["c_text"] * latent["c_vision"]
    )
    duration = np.exp(np.log(MEDIAN_DURATION) + 0.5 * stream.whole(lambda g, s, e: g.standard_normal(e - s)))
    duration = np.clip(duration, 0.5, 30.0)
    modalities = []
    for modality, m_recipe in zip(MODALITIES, recipe.modalities, strict=True):
        messages = [latent["shared"], latent[modality], latent.get(f"c_{modality}", np.zeros((n, k)))]
        plan = _ModalityPlan(
            modality, m_recipe, np.empty(0), {}, messages, ids=modality == "text" and recipe.text_ids
        )
        if plan.ids:
            _plan_token_ids(stream, plan, duration)
        else:
            _plan_features(stream, world, plan, duration)
        modalities.append(plan)
    small = labels(stream.rng, recipe.metric_family, score, latent)
    stems = np.char.mod(f"synth{seed}_%05d", np.arange(n))
    small["id"] = np.char.add(stems, "$_$0").astype(object)
    small["raw_text"] = np.char.add("synthetic utterance ", stems).astype(object)
    config = {"generator": "msabench.synthetic", "name": name, "seed": seed, "n_scale": float(n_scale)}
    config["version"] = GENERATOR_VERSION
    if sizes_option is not None:  # absent otherwise, so the variants' own files keep their bytes
        config["sizes"] = [int(size) for size in sizes_option]
    return _Plan(name, recipe, sizes, modalities, small, config, block_samples)


class _SplitRows:
    """Rows of the whole set written into the split arrays holding them (the encoder's chunks mix splits)."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts
        self.starts = np.cumsum([0] + [len(p) for p in parts])

    def __setitem__(self, key: tuple[np.ndarray, slice], value: np.ndarray) -> None:
        rows, steps = key
        part = np.searchsorted(self.starts, rows, side="right") - 1
        for i in np.unique(part):
            chosen = part == i
            self.parts[i][rows[chosen] - self.starts[i], steps] = value[chosen]


def _fill(plan: _Plan, splits: Mapping[str, MutableMapping[str, Any]], encoder: BertModel | None) -> None:
    """Draw every per-step array block by block into ``splits`` (arrays of zeros, in RAM or mapped)."""
    start = 0
    for part, size in zip(SPLITS, plan.sizes, strict=True):
        for lo in range(0, size, plan.block):
            hi = min(lo + plan.block, size)
            rows = (start + lo, start + hi)
            for m in plan.modalities:
                if m.ids:
                    splits[part]["text_bert"][lo:hi] = _token_ids(m, *rows)
                else:
                    splits[part][m.name][lo:hi] = _features(m, *rows)
        start += size
    if any(m.ids for m in plan.modalities):
        if encoder is None:
            encoder = synthetic_encoder(plan.name, plan.config["seed"])
        ids = np.concatenate([np.asarray(splits[part]["text_bert"]) for part in SPLITS])
        synthetic_text.encode(encoder, ids, out=_SplitRows([splits[part]["text"] for part in SPLITS]))


def generate(
    name: str,
    seed: int = 0,
    n_scale: float = 1.0,
    *,
    sizes: Sequence[int] | None = None,
    encoder: BertModel | None = None,
    block_samples: int | None = None,
) -> dict[str, Any]:
    """Generate a synthetic variant in RAM as an MMSA-layout dict (``train``/``valid``/``test`` + ``config``).

    Args:
        name: one of the synthetic variants (case-insensitive).
        seed: the data seed (the same seed gives byte-identical pickles).
        n_scale: multiplies the sample counts (at least 2 per split).
        sizes: the train / valid / test sample counts (default: the variant's).
        encoder: the variant's text encoder (:func:`synthetic_encoder` of the same name and seed), when the
            caller already built it; built here otherwise.
        block_samples: samples drawn per block (default: about 32 MB of features); the data do not depend
            on it.

    Raises:
        UnknownNameError: not a synthetic variant.
        ConfigError: ``n_scale`` not positive, ``sizes`` not three counts of at least 2.
    """
    plan = _plan(name.lower(), seed, n_scale, sizes, block_samples)
    data = plan.layout()
    for part in SPLITS:
        for key, value in data[part].items():
            if isinstance(value, Hole):
                data[part][key] = np.zeros(value.shape, value.dtype)
    _fill(plan, data, encoder)
    return data


def write_synthetic(
    name: str,
    path: str | Path,
    seed: int = 0,
    n_scale: float = 1.0,
    *,
    sizes: Sequence[int] | None = None,
    encoder: BertModel | None = None,
    block_samples: int | None = None,
) -> Path:
    """Generate a synthetic variant straight into an MMSA pickle at ``path``, atomically, in blocks.

    The file is byte for byte ``pickle.dump(generate(...), protocol=4)``; its large arrays are filled in
    place in the file, so memory holds one block, not the set. A set so small that one of its arrays would
    sit inside a pickle frame (under 64 KiB) is generated in RAM and pickled as usual.

    Args: as :func:`generate`.
    """
    plan = _plan(name.lower(), seed, n_scale, sizes, block_samples)
    layout = plan.layout()
    holes = [v for part in SPLITS for v in layout[part].values() if isinstance(v, Hole)]
    if min(hole.nbytes for hole in holes) < FRAME_SIZE_TARGET:
        data = generate(name, seed, n_scale, sizes=sizes, encoder=encoder, block_samples=block_samples)
        return write_pickle(data, path)
    with atomic_file(path) as handle:
        write_with_holes(layout, handle)
        splits: dict[str, dict[str, Any]] = {
            part: {k: v.array if isinstance(v, Hole) else v for k, v in layout[part].items()}
            for part in SPLITS
        }
        _fill(plan, splits, encoder)
        for hole in holes:
            assert hole.array is not None
            hole.array.flush()
            hole.array = None
    return Path(path)
