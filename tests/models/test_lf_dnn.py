"""lf_dnn: MMSA's pooling, a one-sample training batch, its option checks and its per-dataset paper policy."""

from __future__ import annotations

import pytest
import torch

from msabench.config import compose
from msabench.errors import ConfigError
from msabench.models.components.text import TextEncoder
from msabench.models.lf_dnn.network import LFDNN, pooled_mean


def tiny_network(av_pool: str = "padded_mean") -> LFDNN:
    return LFDNN(
        TextEncoder("features", 6),
        audio_dim=3,
        vision_dim=4,
        output_dim=1,
        hidden_text=5,
        hidden_audio=2,
        hidden_vision=3,
        text_out=4,
        post_fusion_dim=4,
        av_pool=av_pool,  # type: ignore[arg-type]
    )


def test_padded_mean_divides_by_the_padded_length_and_valid_mean_by_the_valid_steps() -> None:
    x = torch.tensor([[[2.0], [4.0], [0.0], [0.0]]])  # two valid frames, two of padding
    valid = torch.tensor([[True, True, False, False]])
    assert pooled_mean(x, valid, "padded_mean").item() == pytest.approx(1.5)  # MMSA: (2 + 4) / 4
    assert pooled_mean(x, valid, "valid_mean").item() == pytest.approx(3.0)
    x[0, 0, 0] = float("-inf")  # COVAREP's -inf never reaches the network
    assert pooled_mean(x, valid, "padded_mean").item() == 0.0


def test_a_one_sample_training_batch_trains() -> None:
    network = tiny_network().train()
    out = network(
        torch.randn(1, 5, 6),
        torch.randn(1, 7, 3),
        torch.ones(1, 7, dtype=torch.bool),
        torch.randn(1, 8, 4),
        torch.ones(1, 8, dtype=torch.bool),
    )
    out.sum().backward()
    assert out.shape == (1, 1) and torch.isfinite(out).all()


def test_unknown_pooling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.av_pool 'kept_mean': use padded_mean or valid_mean"):
        tiny_network("kept_mean")


@pytest.mark.parametrize(
    ("dataset", "family", "policy"),
    [
        ("synthetic", "mosi", "matched"),
        ("sims", "sims", "matched"),
        ("synthetic-iemocap", "iemocap", "conditions"),
    ],
)
def test_paper_policy_is_the_protocol_run_except_on_iemocap(dataset: str, family: str, policy: str) -> None:
    assert compose("lf_dnn", dataset, family).method.paper_policy == policy
