"""Shared layers: the masked feature normalisation DERL's compressors may use."""

from __future__ import annotations

import torch

from msabench.models.components.layers import MaskedFeatureNorm, frozen_statistics


def _frames(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    scales = torch.tensor([1e-3, 1.0, 1e3])  # features decades apart, as raw audio
    x = (torch.randn(5, 8, 3, generator=generator) + 2.0) * scales
    valid = torch.rand(5, 8, generator=generator) < 0.7
    valid[3] = False  # a sample without this modality
    return x, valid


def test_training_batches_standardise_each_feature_over_the_valid_frames_only() -> None:
    x, valid = _frames(torch.Generator().manual_seed(0))
    norm = MaskedFeatureNorm(3).train()
    out = norm(x, valid)
    kept = out[valid]
    torch.testing.assert_close(kept.mean(dim=0), torch.zeros(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(kept.var(dim=0, unbiased=False), torch.ones(3), rtol=0, atol=1e-2)
    assert out[~valid].abs().sum() == 0
    garbage = torch.where(valid[..., None], x, torch.full_like(x, 1e6))  # padding never counts
    torch.testing.assert_close(MaskedFeatureNorm(3).train()(garbage, valid), out)


def test_running_statistics_follow_the_valid_frames_and_make_evaluation_per_sample() -> None:
    x, valid = _frames(torch.Generator().manual_seed(1))
    norm = MaskedFeatureNorm(3, momentum=1.0).train()
    norm(x, valid)
    torch.testing.assert_close(norm.running_mean, x[valid].mean(dim=0))
    torch.testing.assert_close(norm.running_var, x[valid].var(dim=0, unbiased=True))
    norm.eval()
    alone = norm(x[:1], valid[:1])
    torch.testing.assert_close(norm(x, valid)[:1], alone)  # the other samples change nothing
    expected = (x[:1] - norm.running_mean) / (norm.running_var.sqrt() + norm.eps)
    torch.testing.assert_close(alone[valid[:1]], expected[valid[:1]], rtol=1e-4, atol=1e-4)


def test_a_training_batch_without_valid_frames_keeps_the_running_statistics() -> None:
    x, _ = _frames(torch.Generator().manual_seed(2))
    norm = MaskedFeatureNorm(3).train()
    out = norm(x, torch.zeros(5, 8, dtype=torch.bool))
    assert torch.isfinite(out).all() and out.abs().sum() == 0
    assert torch.equal(norm.running_mean, torch.zeros(3)) and torch.equal(norm.running_var, torch.ones(3))


def test_statistics_come_from_the_kept_frames_and_dropped_ones_are_normalised_not_counted() -> None:
    x, valid = _frames(torch.Generator().manual_seed(3))
    kept = valid & (torch.rand(5, 8, generator=torch.Generator().manual_seed(4)) < 0.6)
    missing = torch.where(kept[..., None], x, 0.0)  # the protocol zeroes what it drops
    norm = MaskedFeatureNorm(3, momentum=1.0).train()
    out = norm(missing, valid, kept)
    torch.testing.assert_close(norm.running_mean, x[kept].mean(dim=0))
    torch.testing.assert_close(norm.running_var, x[kept].var(dim=0, unbiased=True))
    torch.testing.assert_close(out[kept].mean(dim=0), torch.zeros(3), rtol=0, atol=1e-5)
    dropped = valid & ~kept
    expected = -x[kept].mean(dim=0) / (x[kept].var(dim=0, unbiased=False).sqrt() + norm.eps)
    torch.testing.assert_close(out[dropped], expected.expand(int(dropped.sum()), 3), rtol=1e-4, atol=1e-4)
    assert out[~valid].abs().sum() == 0


def test_frozen_statistics_normalise_by_the_batch_and_leave_the_running_statistics() -> None:
    x, valid = _frames(torch.Generator().manual_seed(5))
    norm = MaskedFeatureNorm(3).train()
    with frozen_statistics(torch.nn.Sequential(norm)):
        frozen = norm(x, valid)
    assert torch.equal(norm.running_mean, torch.zeros(3)) and torch.equal(norm.running_var, torch.ones(3))
    torch.testing.assert_close(frozen, MaskedFeatureNorm(3).train()(x, valid))
    norm(x, valid)  # outside the context the statistics move again
    assert not torch.equal(norm.running_mean, torch.zeros(3))
