from __future__ import annotations

import dataclasses

import pytest
import torch

from msabench.core.batch import MODALITIES, complete_view
from msabench.errors import ConfigError, UnknownNameError
from msabench.protocols import MISSING_CONDITIONS, POLICIES, Setting, apply_setting, build_policy
from msabench.protocols.hashing import ONE
from msabench.protocols.masks import lnln_plan, train_key
from msabench.protocols.policies import policy_class

MATCHED = Setting("intra", 0.4)
KEEP_KEYS = [*(f"{m}_keep" for m in MODALITIES), "available"]


def train(split, policy, *, seed=1111, epoch=0, rows=None, batch=None):
    batch = split.batch(rows) if batch is None else batch
    return policy.apply(batch, seed=seed, epoch=epoch, split_size=split.size, keep_text_boundaries=True)


def policy(name: str, **params):
    return build_policy(name, matched=MATCHED, **params)


@pytest.mark.parametrize("name", POLICIES)
def test_outputs_carry_the_complete_view_and_leave_input_alone(make_split, name) -> None:
    split = make_split(40)
    batch = split.batch()
    before = {k: v.clone() for k, v in batch.items()}
    out = train(split, policy(name), batch=batch)
    assert batch.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(batch[key], value), key
    for m in MODALITIES:
        assert torch.equal(out[f"{m}_full"], before[m])
        assert not (out[f"{m}_keep"] & ~batch[f"{m}_valid"]).any()  # padding never present
    assert torch.equal(out["text_ids_full"], before["text_ids"])
    assert torch.equal(complete_view(out)["text"], before["text"])


def test_no_text_ids_full_without_text_ids(make_split) -> None:
    split = make_split(10, text_ids=False)
    out = train(split, policy("lnln"))
    assert "text_ids_full" not in out and "text_ids" not in out and "text_full" in out


def test_complete_policy_drops_nothing(make_split) -> None:
    split = make_split(20)
    out = train(split, policy("complete"))
    for m in MODALITIES:
        assert torch.equal(out[f"{m}_keep"], split.rows[f"{m}_valid"])
        assert torch.equal(out[m], split.rows[m])
    assert out["available"].all()


def test_matched_is_static_and_equals_the_setting_on_the_train_split(make_split) -> None:
    split = make_split(30)
    expected = apply_setting(split.batch(), MATCHED, split="train", split_size=30, keep_text_boundaries=True)
    for seed, epoch in ((1111, 0), (1112, 5)):
        out = train(split, policy("matched"), seed=seed, epoch=epoch)
        for key in [*KEEP_KEYS, *MODALITIES, "text_ids"]:
            assert torch.equal(out[key], expected[key]), key


def test_settings_that_remove_nothing_train_one_matched_model(make_split) -> None:
    split = make_split(30)
    nothing = [
        Setting("complete"),
        Setting("intra", 0.0),
        Setting("inter", 0.0),
        Setting("condition", None, "vat"),
    ]
    something = [
        Setting("intra", 0.1),
        Setting("inter", 0.1),
        Setting("condition", None, "ta"),
        Setting("stochastic"),
    ]
    assert all(s.removes_nothing for s in nothing) and not any(s.removes_nothing for s in something)
    reference = train(split, build_policy("matched", matched=nothing[0]))
    for setting in nothing[1:]:  # the same training batches, so the same model
        out = train(split, build_policy("matched", matched=setting))
        for key in (*KEEP_KEYS, *MODALITIES):
            assert torch.equal(out[key], reference[key]), (setting.name, key)
    check = policy_class("matched").validation_settings
    assert check(nothing[1:], mask_seed=1, validation_rate=0.5) == [nothing[1]]  # validates on the first
    with pytest.raises(ConfigError, match="one model per test setting"):
        check([nothing[1], something[0]], mask_seed=1, validation_rate=0.5)


def test_matched_resample_changes_per_epoch(make_split) -> None:
    split = make_split(30)
    resampled = policy("matched", resample=True)
    first, again = train(split, resampled, epoch=0), train(split, resampled, epoch=0)
    later = train(split, resampled, epoch=1)
    assert torch.equal(first["audio_keep"], again["audio_keep"])
    assert not torch.equal(first["audio_keep"], later["audio_keep"])


@pytest.mark.parametrize("size", [100, 101])
def test_lnln_exactly_half_clean_per_modality(size) -> None:
    plan = lnln_plan(train_key(1111, 0), torch.arange(size), size)
    for thresholds in plan.thresholds:
        assert int((thresholds == 0).sum()) == size // 2
        assert int(thresholds.max()) < ONE


def test_lnln_drops_a_quarter_and_cleans_half_the_samples(make_split) -> None:
    split = make_split(600)
    out = train(split, policy("lnln"))
    assert out["available"].all()
    for m in ("audio", "vision"):  # text boundaries would bias the fractions
        valid, keep = split.rows[f"{m}_valid"], out[f"{m}_keep"]
        clean = (keep == valid).all(dim=1)
        assert clean.sum() >= split.size // 2  # plus the few noisy samples that happened to lose nothing
        rate = (valid & ~keep).sum() / valid.sum()
        assert abs(rate.item() - 0.25) < 0.03  # 0.5 * 0 + 0.5 * E[U(0, 1)]


def test_lnln_resamples_per_epoch_unless_static(make_split) -> None:
    split = make_split(60)
    per_epoch, static = policy("lnln"), policy("lnln", static=True)
    assert not torch.equal(
        train(split, per_epoch, epoch=0)["audio_keep"], train(split, per_epoch, epoch=1)["audio_keep"]
    )
    assert torch.equal(
        train(split, static, epoch=0)["audio_keep"], train(split, static, epoch=1)["audio_keep"]
    )
    assert not torch.equal(
        train(split, static, seed=1)["audio_keep"], train(split, static, seed=2)["audio_keep"]
    )


def test_conditions_one_of_six_uniformly_per_epoch(make_split) -> None:
    split = make_split(3000)
    out = train(split, policy("conditions"))
    available = out["available"]
    counts = available.sum(dim=1)
    assert ((counts >= 1) & (counts <= 2)).all()  # never the complete condition, never nothing
    codes = available.long() @ torch.tensor([4, 2, 1])
    expected = {4 * ("t" in c) + 2 * ("a" in c) + ("v" in c) for c in MISSING_CONDITIONS}
    assert set(codes.unique().tolist()) == expected
    for code in expected:
        share = (codes == code).double().mean().item()
        assert abs(share - 1 / 6) < 4 * (5 / 36 / split.size) ** 0.5
    later = train(split, policy("conditions"), epoch=1)["available"]
    assert not torch.equal(later, available)


def test_stochastic_never_drops_all_three_and_matches_its_distribution(make_split) -> None:
    split = make_split(3000)
    out = train(split, policy("stochastic"))
    available = out["available"]
    assert available.any(dim=1).all()
    # P(m dropped | not all three) = (0.3 - 0.3^3) / (1 - 0.3^3)
    expected = (0.3 - 0.027) / 0.973
    tolerance = 4 * (expected * (1 - expected) / split.size) ** 0.5
    for j in range(3):
        assert abs((~available[:, j]).double().mean().item() - expected) < tolerance
    there = available[:, 1]
    valid, keep = split.rows["audio_valid"][there], out["audio_keep"][there]
    assert abs(((valid & ~keep).sum() / valid.sum()).item() - 0.45) < 0.03  # E[U(0, 0.9)]


def test_stochastic_fallback_keeps_exactly_one_modality(make_split) -> None:
    split = make_split(200)
    available = train(split, policy("stochastic", p_modality=1.0, max_frame_rate=0.0))["available"]
    assert (available.sum(dim=1) == 1).all()
    assert available.any(dim=0).all()  # the kept one is drawn, not always the same


@pytest.mark.parametrize("name", ["lnln", "conditions", "stochastic", "matched"])
def test_policy_masks_do_not_depend_on_batch_composition(make_split, name) -> None:
    split = make_split(50)
    full = train(split, policy(name), epoch=3)
    order = torch.randperm(split.size, generator=torch.Generator().manual_seed(2))
    chunks = [train(split, policy(name), epoch=3, rows=rows) for rows in order.split(9)]
    for key in [*KEEP_KEYS, "text_ids"]:
        assert torch.equal(torch.cat([c[key] for c in chunks]), full[key][order]), key


@pytest.mark.parametrize("name", ["lnln", "conditions", "stochastic"])
def test_training_draws_are_keyed_by_seed(make_split, name) -> None:
    split = make_split(50)
    a, b = train(split, policy(name), seed=1), train(split, policy(name), seed=2)
    assert torch.equal(train(split, policy(name), seed=1)["text_ids"], a["text_ids"])
    assert any(not torch.equal(a[k], b[k]) for k in KEEP_KEYS)


def test_policies_are_frozen_and_describe_themselves() -> None:
    stochastic = policy("stochastic", p_modality=0.2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stochastic.p_modality = 0.5  # type: ignore[misc]
    assert stochastic.describe() == {"name": "stochastic", "p_modality": 0.2, "max_frame_rate": 0.9}
    assert policy("matched").describe() == {"name": "matched", "matched": "intra@0.4", "resample": False}
    assert build_policy("lnln").name == "lnln"


def test_build_policy_errors() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'lnln'"):
        build_policy("lnnl")
    with pytest.raises(ConfigError, match="config.yaml"):
        build_policy("paper")
    with pytest.raises(ConfigError, match="needs the test setting"):
        build_policy("matched")
    with pytest.raises(
        ConfigError, match="unknown parameter 'rate' for policy 'lnln'; its parameters: static"
    ):
        build_policy("lnln", rate=0.5)
    with pytest.raises(ConfigError, match="true or false"):
        build_policy("lnln", static="yes")
    with pytest.raises(ConfigError, match=r"p_modality must be a number in \[0, 1\]"):
        build_policy("stochastic", p_modality=1.5)
    with pytest.raises(ConfigError, match="its parameters: none"):
        build_policy("conditions", static=True)
