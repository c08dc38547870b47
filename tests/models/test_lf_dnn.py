"""lf_dnn: MMSA's pooling, a one-sample training batch, its option checks and its per-dataset paper policy."""

from __future__ import annotations

import pytest
import torch

from msabench.config import compose
from msabench.errors import ConfigError
from msabench.models.components.text import TextEncoder
from msabench.models.lf_dnn.config import ModelConfig
from msabench.models.lf_dnn.network import LFDNN, pooled_mean


def tiny_network(av_pool: str = "padded_mean", text_readout: str = "last_valid") -> LFDNN:
    widths = {"hidden_text": 5, "hidden_audio": 2, "hidden_vision": 3, "text_out": 4, "post_fusion_dim": 4}
    dropouts = {"dropout_audio": 0.2, "dropout_vision": 0.2, "dropout_post": 0.2}
    text = {"text_encoder": "features", "bert_path": None, "bert_finetune": False}
    model = ModelConfig(**text, **widths, **dropouts, av_pool=av_pool, text_readout=text_readout)
    return LFDNN(model, TextEncoder("features", 6), audio_dim=3, vision_dim=4, output_dim=1)


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
        torch.ones(1, 5, dtype=torch.bool),
    )
    out.sum().backward()
    assert out.shape == (1, 1) and torch.isfinite(out).all()


def test_unknown_pooling_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="model.av_pool must be one of padded_mean, valid_mean, not 'kept_mean'"
    ):
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


def text_vector(network: LFDNN, text: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return network.text_subnet(text, valid)


def test_last_valid_readout_is_the_lstm_state_at_the_last_token_whatever_the_padding() -> None:
    torch.manual_seed(0)
    network = tiny_network().eval()
    tokens = torch.randn(2, 3, 6)
    short = torch.cat([tokens, torch.zeros(2, 2, 6)], dim=1)  # 3 tokens + 2 padded steps
    long = torch.cat([tokens, torch.zeros(2, 40, 6)], dim=1)  # the same sentence, MOSI-like padding
    valid_short = torch.arange(5)[None] < 3
    valid_long = torch.arange(43)[None] < 3
    unpadded = network.text_subnet.linear(network.text_subnet.lstm(tokens)[1][0][-1])
    read_short = text_vector(network, short, valid_short.expand(2, -1))
    read_long = text_vector(network, long, valid_long.expand(2, -1))
    torch.testing.assert_close(read_short, unpadded)
    torch.testing.assert_close(read_long, unpadded)


def test_final_step_readout_is_mmsas_state_after_the_padding() -> None:
    torch.manual_seed(0)
    network = tiny_network(text_readout="final_step").eval()
    text = torch.cat([torch.randn(1, 3, 6), torch.zeros(1, 4, 6)], dim=1)
    valid = torch.arange(7)[None] < 3
    after_padding = network.text_subnet.linear(network.text_subnet.lstm(text)[1][0][-1])
    torch.testing.assert_close(text_vector(network, text, valid), after_padding)


def test_last_valid_readout_reads_each_sample_at_its_own_length() -> None:
    torch.manual_seed(0)
    network = tiny_network().eval()
    text = torch.randn(3, 6, 6)
    lengths = torch.tensor([6, 2, 0])  # the last sample's text is absent: no positions
    valid = torch.arange(6)[None] < lengths[:, None]
    text = text * valid[..., None]
    read = text_vector(network, text, valid)
    outputs = network.text_subnet.lstm(text)[0]
    expected = network.text_subnet.linear(torch.stack([outputs[0, 5], outputs[1, 1], outputs[2, 0]]))
    torch.testing.assert_close(read, expected)


def test_unknown_text_readout_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="model.text_readout must be one of last_valid, final_step, not 'mean'"
    ):
        tiny_network(text_readout="mean")


def test_default_readout_is_last_valid() -> None:
    assert compose("lf_dnn", "mosi", "mosi").model.text_readout == "last_valid"
