from __future__ import annotations

import pytest
import torch

from msabench.core.batch import MODALITIES, UNK_TOKEN_ID
from msabench.errors import ConfigError, UnknownNameError
from msabench.protocols import ALL_CONDITIONS, MAX_INTER_RATE, Setting, apply_setting
from msabench.protocols.hashing import hash24, uniform
from msabench.protocols.masks import STREAM_FRAMES, eval_key

SETTINGS = [
    Setting("intra", 0.3),
    Setting("inter", 0.4),
    Setting("condition", condition="tv"),
    Setting("stochastic"),
    Setting("complete"),
]
IDS = [s.name for s in SETTINGS]
OUTPUT_KEYS = [*MODALITIES, *(f"{m}_keep" for m in MODALITIES), "available", "text_ids"]


def run(split, setting, rows=None, *, split_name="test", boundaries=True, batch=None):
    batch = split.batch(rows) if batch is None else batch
    return apply_setting(
        batch, setting, split=split_name, split_size=split.size, keep_text_boundaries=boundaries
    )


def boundary_mask(valid: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(valid.shape[1])
    length = valid.sum(1, keepdim=True)
    return valid & ((positions == 0) | (positions == length - 1))


@pytest.mark.parametrize(
    "setting", [Setting("intra", 0.0), Setting("inter", 0.0), Setting("complete")], ids=str
)
def test_rate_zero_drops_nothing(make_split, setting) -> None:
    split = make_split(40)
    batch, out = split.batch(), run(split, setting)
    for m in MODALITIES:
        assert torch.equal(out[f"{m}_keep"], batch[f"{m}_valid"])
        assert torch.equal(out[m], batch[m])
    assert torch.equal(out["text_ids"], batch["text_ids"])
    assert out["available"].all()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropped_fraction_matches_rate(make_split, rate) -> None:
    split = make_split(800)
    batch, out = split.batch(), run(split, Setting("intra", rate))
    for m in MODALITIES:
        droppable = batch[f"{m}_valid"]
        if m == "text":  # [CLS]/[SEP] are never dropped
            droppable = droppable & ~boundary_mask(droppable)
        n = int(droppable.sum())
        dropped = int((droppable & ~out[f"{m}_keep"]).sum())
        assert abs(dropped / n - rate) < 4 * (rate * (1 - rate) / n) ** 0.5, m


def test_modalities_use_independent_streams(make_split) -> None:
    split = make_split(800)
    out = run(split, Setting("intra", 0.5))
    both = split.rows["text_valid"][:, :9] & split.rows["vision_valid"][:, :9]
    both &= ~boundary_mask(split.rows["text_valid"])[:, :9]
    agree = (out["text_keep"][:, :9] == out["vision_keep"][:, :9])[both].double().mean().item()
    assert abs(agree - 0.5) < 0.05  # identical streams would agree everywhere


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_masks_do_not_depend_on_batch_size_or_order(make_split, setting) -> None:
    split = make_split(50)
    full = run(split, setting)
    order = torch.randperm(split.size, generator=torch.Generator().manual_seed(1))
    chunks = [run(split, setting, rows) for rows in order.split(7)]
    for key in OUTPUT_KEYS:
        shuffled = torch.cat([chunk[key] for chunk in chunks])
        assert torch.equal(shuffled, full[key][order]), key


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_masks_do_not_depend_on_feature_dtype(make_split, dtype) -> None:
    split = make_split(30)
    reference = run(split, Setting("stochastic"))
    batch = split.batch()
    for m in MODALITIES:
        batch[m] = batch[m].to(dtype)
    batch["index"] = batch["index"].to(torch.int32)
    out = run(split, Setting("stochastic"), batch=batch)
    for m in MODALITIES:
        assert torch.equal(out[f"{m}_keep"], reference[f"{m}_keep"])
        assert out[m].dtype == dtype
    assert torch.equal(out["available"], reference["available"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_cuda_matches_cpu(make_split, setting) -> None:
    split = make_split(50)
    cpu = run(split, setting)
    cuda = run(split, setting, batch={k: v.cuda() for k, v in split.batch().items()})
    for key in OUTPUT_KEYS:
        assert torch.equal(cuda[key].cpu(), cpu[key]), key


def test_intra_masks_are_nested_across_rates(make_split) -> None:
    split = make_split(60)
    keeps = [run(split, Setting("intra", r)) for r in (0.1, 0.3, 0.6, 0.9, 1.0)]
    for low, high in zip(keeps, keeps[1:], strict=False):
        for m in MODALITIES:
            assert not (high[f"{m}_keep"] & ~low[f"{m}_keep"]).any()  # kept at the higher rate => kept below
            assert (low[f"{m}_keep"] & ~high[f"{m}_keep"]).any()


@pytest.mark.parametrize("size", [10, 101])
def test_inter_removes_exact_count_nested_and_keeps_one_modality(make_split, size) -> None:
    split = make_split(size)
    previous = torch.ones(size, 3, dtype=torch.bool)
    for rate in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, MAX_INTER_RATE):
        available = run(split, Setting("inter", rate))["available"]
        assert int((~available).sum()) == int(rate * 3 * size + 0.5 + 1e-9)  # round half up
        assert available.any(dim=1).all()
        assert not (available & ~previous).any()  # nested: missing at a lower rate => missing here
        previous = available
    assert (previous.sum(dim=1) == 1).all()  # MR = 2/3 leaves exactly one modality per sample


@pytest.mark.parametrize(
    ("size", "rate", "removed"), [(10, 0.5, 15), (101, 0.5, 152), (5, 0.1, 2), (15, 0.1, 5), (15, 0.3, 14)]
)
def test_inter_hand_counts(make_split, size, rate, removed) -> None:
    # 0.5 * 303 = 151.5, 0.1 * 15 = 1.5, 0.1 * 45 = 4.5 and 0.3 * 45 = 13.5 (13.499999999999998 in floats,
    # where Python's round would give 13) all round half up
    assert int((~run(make_split(size), Setting("inter", rate))["available"]).sum()) == removed


def test_inter_depends_on_mask_seed_and_split(make_split) -> None:
    split = make_split(60)
    reference = run(split, Setting("inter", 0.4))["available"]
    assert torch.equal(run(split, Setting("inter", 0.4))["available"], reference)
    assert not torch.equal(run(split, Setting("inter", 0.4, mask_seed=7))["available"], reference)
    assert not torch.equal(run(split, Setting("inter", 0.4), split_name="valid")["available"], reference)


def test_whole_modality_removal(make_split) -> None:
    split = make_split(60)
    batch, out = split.batch(), run(split, Setting("inter", 0.5))
    for j, m in enumerate(MODALITIES):
        gone, there = ~out["available"][:, j], out["available"][:, j]
        assert gone.any() and there.any()
        assert not out[f"{m}_keep"][gone].any()
        assert not out[f"{m}_valid"][gone].any(), "an absent modality has no positions (no length)"
        assert (out[m][gone] == 0).all()
        assert torch.equal(out[m][there], batch[m][there])
        assert torch.equal(out[f"{m}_keep"][there], batch[f"{m}_valid"][there])
        assert torch.equal(out[f"{m}_valid"][there], batch[f"{m}_valid"][there])
    gone = ~out["available"][:, 0]
    empty = torch.zeros_like(batch["text_ids"][0])
    empty[0, :2] = torch.tensor([101, 102])
    empty[1, :2] = 1
    assert torch.equal(out["text_ids"][gone], empty.expand(int(gone.sum()), -1, -1))
    assert torch.equal(out["text_ids"][~gone][:, 1:], batch["text_ids"][~gone][:, 1:])


def hand_batch() -> dict[str, torch.Tensor]:
    text_valid = torch.tensor([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0]]).bool()
    ids = torch.tensor([[101, 7, 8, 102, 0], [101, 0, 0, 0, 0], [101, 9, 102, 0, 0]])
    batch = {
        "text": torch.ones(3, 5, 2) * text_valid[..., None],
        "text_valid": text_valid,
        "text_ids": torch.stack([ids, text_valid.long(), torch.zeros_like(ids)], dim=1),
        "index": torch.arange(3),
    }
    for m in ("audio", "vision"):
        batch[m], batch[f"{m}_valid"] = torch.ones(3, 4, 1), torch.ones(3, 4, dtype=torch.bool)
    return batch


def test_text_boundaries_kept_at_rate_one() -> None:
    batch = hand_batch()
    out = apply_setting(batch, Setting("intra", 1.0), split="test", split_size=3, keep_text_boundaries=True)
    assert out["text_ids"][:, 0].tolist() == [
        [101, 100, 100, 102, 0],
        [101, 0, 0, 0, 0],
        [101, 100, 102, 0, 0],
    ]
    assert out["text_keep"].int().tolist() == [[1, 0, 0, 1, 0], [1, 0, 0, 0, 0], [1, 0, 1, 0, 0]]
    assert out["text"][:, :, 0].tolist() == out["text_keep"].float().tolist()
    assert torch.equal(
        out["text_ids"][:, 1:], batch["text_ids"][:, 1:]
    )  # attention mask and segments unchanged
    assert not out["audio_keep"].any() and (out["vision"] == 0).all()


def test_text_boundaries_not_kept_when_off() -> None:
    out = apply_setting(
        hand_batch(), Setting("intra", 1.0), split="test", split_size=3, keep_text_boundaries=False
    )
    assert out["text_ids"][:, 0].tolist() == [
        [100, 100, 100, 100, 0],
        [100, 0, 0, 0, 0],
        [100, 100, 100, 0, 0],
    ]
    assert not out["text_keep"].any()


def test_removed_text_is_the_empty_sentence_whatever_its_length() -> None:
    out = apply_setting(hand_batch(), Setting("condition", condition="av"), split="test", split_size=3,
                        keep_text_boundaries=True)  # fmt: skip
    assert out["text_ids"][:, 0].tolist() == [[101, 102, 0, 0, 0]] * 3
    assert out["text_ids"][:, 1].tolist() == [[1, 1, 0, 0, 0]] * 3
    assert (
        not out["text_valid"].any() and not out["text_keep"].any() and (out["text"] == 0).all()
    )  # features of removed text are all zero
    assert out["available"].tolist() == [[False, True, True]] * 3


def test_unk_exactly_where_valid_tokens_dropped(make_split) -> None:
    split = make_split(80)
    batch, out = split.batch(), run(split, Setting("intra", 0.5))
    dropped = batch["text_valid"] & ~out["text_keep"]
    assert dropped.any()
    assert torch.equal(out["text_ids"][:, 0] == UNK_TOKEN_ID, dropped)
    assert torch.equal(out["text_ids"][:, 0][~dropped], batch["text_ids"][:, 0][~dropped])  # padding stays 0


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_features_zeroed_exactly_where_not_kept_and_padding_never_present(make_split, setting) -> None:
    split = make_split(60)
    batch, out = split.batch(), run(split, setting)
    for m in MODALITIES:
        keep = out[f"{m}_keep"]
        assert not (keep & ~batch[f"{m}_valid"]).any()
        assert torch.equal((out[m] != 0).all(dim=-1), keep)  # input features are non-zero on valid steps
        assert torch.equal(out[m][keep], batch[m][keep])


@pytest.mark.parametrize("condition", ALL_CONDITIONS)
def test_condition_availability(make_split, condition) -> None:
    split = make_split(20)
    out = run(split, Setting("condition", condition=condition))
    expected = torch.tensor([letter in condition for letter in "tav"])
    assert torch.equal(out["available"], expected.expand(20, 3))
    for j, m in enumerate(MODALITIES):
        if expected[j]:
            assert torch.equal(out[f"{m}_keep"], split.rows[f"{m}_valid"])
        else:
            assert not out[f"{m}_keep"].any() and (out[m] == 0).all()


def test_stochastic_setting_never_drops_everything_and_is_fixed(make_split) -> None:
    split = make_split(400)
    out = run(split, Setting("stochastic"))
    assert out["available"].any(dim=1).all()
    assert (~out["available"]).any()  # about 28% of the pairs are missing
    assert torch.equal(run(split, Setting("stochastic"))["audio_keep"], out["audio_keep"])
    assert not torch.equal(
        run(split, Setting("stochastic"), split_name="valid")["audio_keep"], out["audio_keep"]
    )


@pytest.mark.parametrize("setting", SETTINGS, ids=IDS)
def test_input_not_mutated(make_split, setting) -> None:
    split = make_split(30)
    batch = split.batch()
    batch["text_full"] = batch["text"].clone()
    before = {k: v.clone() for k, v in batch.items()}
    out = run(split, setting, batch=batch)
    assert out is not batch and batch.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(batch[key], value), key
    assert not [k for k in out if k.endswith("_full")]  # evaluation never carries the complete view


def test_same_keys_same_masks_and_seed_changes_them(make_split) -> None:
    split = make_split(30)
    first, again = run(split, Setting("intra", 0.5)), run(split, Setting("intra", 0.5))
    other_seed = run(split, Setting("intra", 0.5, mask_seed=1112))
    other_split = run(split, Setting("intra", 0.5), split_name="valid")
    for m in MODALITIES:
        assert torch.equal(first[f"{m}_keep"], again[f"{m}_keep"])
        assert not torch.equal(first[f"{m}_keep"], other_seed[f"{m}_keep"])
        assert not torch.equal(first[f"{m}_keep"], other_split[f"{m}_keep"])


def test_bad_split_and_split_size(make_split) -> None:
    split = make_split(5)
    with pytest.raises(UnknownNameError, match="Valid splits: test, train, valid"):
        run(split, Setting("intra", 0.5), split_name="val")
    with pytest.raises(ConfigError, match="split_size"):
        apply_setting(
            split.batch(), Setting("intra", 0.5), split="test", split_size=0, keep_text_boundaries=True
        )


def dense_batch(size: int) -> dict[str, torch.Tensor]:
    batch = {"index": torch.arange(size)}
    for m, length in (("text", 6), ("audio", 8), ("vision", 5)):
        batch[m], batch[f"{m}_valid"] = (
            torch.ones(size, length, 1),
            torch.ones(size, length, dtype=torch.bool),
        )
    return batch


def test_golden_masks_pin_the_protocol_definitions() -> None:
    # These values define the benchmark's test sets: a change here silently changes every published number.
    intra = apply_setting(
        dense_batch(4), Setting("intra", 0.5), split="test", split_size=4, keep_text_boundaries=False
    )
    assert intra["audio_keep"].int().tolist() == [
        [1, 1, 1, 0, 1, 0, 0, 1],
        [0, 1, 0, 0, 1, 1, 0, 1],
        [0, 1, 0, 1, 0, 1, 1, 0],
        [1, 1, 0, 0, 0, 0, 1, 1],
    ]
    inter = apply_setting(
        dense_batch(10), Setting("inter", 0.5), split="test", split_size=10, keep_text_boundaries=False
    )
    assert inter["available"].int().tolist() == [
        [1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [0, 1, 0],
        [0, 1, 0], [1, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0],
    ]  # fmt: skip


def test_intra_is_the_hash_compared_with_the_rate() -> None:
    batch = dense_batch(16)
    out = apply_setting(
        batch, Setting("intra", 0.3, mask_seed=5), split="valid", split_size=16, keep_text_boundaries=False
    )
    for j, m in enumerate(MODALITIES):
        u = uniform(hash24((*eval_key(5, "valid"), STREAM_FRAMES, j), batch["index"], batch[m].shape[1]))
        assert torch.equal(out[f"{m}_keep"], u >= 0.3)
