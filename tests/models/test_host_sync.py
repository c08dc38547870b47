"""Network code that chooses shapes or branches on the device: the same outputs as the host-side choice.

UMDF's DFIM used to test on the host whether every sample's anchor modality is present, DERL's compressor
trimmed the batch to its last valid step with an index read on the host and packed the valid frames with
``nonzero``, and its low-level reconstruction gathered the dropped steps (still so on the CPU, where it is
free); each made a GPU's host wait every step.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from msabench.models.components.layers import accelerator_paths, gathers_cheaply, masked_mean
from msabench.models.components.text import TextEncoder
from msabench.models.derl.config import ModelConfig as DERLModelConfig
from msabench.models.derl.network import DERL, TokenCompressor
from msabench.models.umdf.dfim import DFIM, resample_onto
from msabench.tools.gpu_check import cpu_sync_proxy


def _valid(batch: int, length: int, generator: torch.Generator, low: int = 1) -> torch.Tensor:
    lengths = torch.randint(low, length + 1, (batch,), generator=generator)
    return torch.arange(length)[None] < lengths[:, None]


@pytest.mark.parametrize("anchor", ["text", "audio", "vision"])
@pytest.mark.parametrize("pooling", ["mean", "mean_last"])
def test_dfim_with_every_anchor_present_is_exactly_the_anchor_timeline(anchor: str, pooling: str) -> None:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    dfim = DFIM(8, anchor, pooling)
    lengths = (20, 16, 16)  # the anchor's timeline is at least as long as the others' (aligned, or max_len)
    ys = [torch.randn(5, n, 8, generator=generator) for n in lengths]
    valids = [_valid(5, n, generator) for n in lengths]
    # The former path: the others resampled onto the anchor's own valid steps, the anchor as it is.
    enhanced = [y + torch.sigmoid(gate(y)) * y for gate, y in zip(dfim.enhance, ys, strict=True)]
    on_anchor = valids[dfim.anchor]
    aligned = [
        y if m == dfim.anchor else resample_onto(y, valids[m], on_anchor) for m, y in enumerate(enhanced)
    ]
    u = torch.cat(aligned, dim=-1)
    frames = torch.sigmoid(dfim.filter_gate(u)) * dfim.filter_value(u)
    expected = masked_mean(frames, on_anchor)
    if pooling == "mean_last":
        rank = on_anchor.cumsum(dim=1) - 1
        pick = (rank == (on_anchor.sum(dim=1) - 1)[:, None]) & on_anchor
        expected = torch.cat([expected, (frames * pick[..., None]).sum(dim=1)], dim=-1)
    if lengths[dfim.anchor] == max(lengths):
        assert torch.equal(dfim(ys, valids), expected)
    else:  # a longer timeline only adds zero-weight steps; sums may round differently
        torch.testing.assert_close(dfim(ys, valids), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["transformer", "perceiver"])
def test_compressor_ignores_trailing_padding_and_zeroes_it(kind: str) -> None:
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    compressor = TokenCompressor(6, 16, 2, 1, 2, 32, 0.0, kind, "feature").eval()
    x = torch.randn(4, 12, 6, generator=generator)
    valid = _valid(4, 12, generator)
    valid[:, 9:] = False  # the batch's last valid step is at most 8
    padded_x = torch.cat([x, torch.randn(4, 7, 6, generator=generator)], dim=1)
    padded_valid = torch.cat([valid, valid.new_zeros(4, 7)], dim=1)
    with torch.no_grad():
        tokens, frames, _ = compressor(x, valid)
        more_tokens, more_frames, _ = compressor(padded_x, padded_valid)
    torch.testing.assert_close(more_tokens, tokens, rtol=0, atol=1e-5)
    last = int(valid.any(dim=0).nonzero().max())
    assert frames[:, last + 1 :].abs().sum() == 0 and more_frames[:, last + 1 :].abs().sum() == 0
    torch.testing.assert_close(more_frames[:, :12][valid], frames[valid], rtol=0, atol=1e-5)


def _derl(kind: str, low_level_input: str) -> DERL:
    torch.manual_seed(2)
    text = TextEncoder("features", 10)
    model = DERLModelConfig(
        text_encoder="features",
        bert_path=None,
        bert_finetune=False,
        hidden=16,
        n_tokens=2,
        encoder_layers=1,
        encoder_heads=2,
        encoder_ff=32,
        compressor=kind,
        n_shared_experts=2,
        router_top_k=None,
        dropout=0.1,
        decoder_dropout=0.2,
        low_level_input=low_level_input,
        fusion_text_shared=False,
        input_norm="feature",
    )
    return DERL(model, text, 3, 4, 1).eval()


def _inputs(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    shapes = ((5, 7, 10), (5, 11, 3), (5, 9, 4))
    out: list[torch.Tensor] = []
    for batch, length, dim in shapes:
        valid = _valid(batch, length, generator)
        out += [torch.randn(batch, length, dim, generator=generator) * valid[..., None], valid]
    out[5][2] = False  # one sample without vision at all
    return tuple(out)


@pytest.mark.parametrize("kind", ["transformer", "perceiver"])
@pytest.mark.parametrize("low_level_input", ["encoder", "projection"])
def test_derl_low_level_reconstruction_is_the_same_gathered_or_decoded_everywhere(
    kind: str, low_level_input: str
) -> None:
    generator = torch.Generator().manual_seed(3)
    network = _derl(kind, low_level_input)
    inputs = _inputs(generator)
    positions = tuple(v & (torch.rand(v.shape, generator=generator) < 0.4) for v in inputs[1::2])
    with torch.no_grad():
        encoded = network.encode(*inputs)
        gathered = network.reconstruct_low(encoded, positions, gather=True)  # type: ignore[arg-type]
        everywhere = network.reconstruct_low(encoded, positions, gather=False)  # type: ignore[arg-type]
    for g, e, selected in zip(gathered, everywhere, positions, strict=True):
        assert e[~selected].abs().sum() == 0 and g[~selected].abs().sum() == 0
        torch.testing.assert_close(e, g, rtol=0, atol=1e-5)


def test_derl_training_computation_makes_no_synchronising_call_on_the_accelerator_path() -> None:
    generator = torch.Generator().manual_seed(4)
    network = _derl("perceiver", "encoder").train()
    inputs = _inputs(generator)
    positions = tuple(v & (torch.rand(v.shape, generator=generator) < 0.4) for v in inputs[1::2])
    sites: Counter[str] = Counter()
    assert gathers_cheaply(torch.device("cpu"))
    with accelerator_paths(), cpu_sync_proxy(sites):
        assert not gathers_cheaply(torch.device("cpu"))
        out = network(*inputs)
        rebuilt = network.reconstruct_low(out.encoded, positions)  # type: ignore[arg-type]
        (out.prediction.sum() + sum(r.sum() for r in rebuilt)).backward()
    assert gathers_cheaply(torch.device("cpu"))
    assert not sites, dict(sites)
    with cpu_sync_proxy(sites):  # the CPU's own path gathers, which the proxy sees
        network.reconstruct_low(out.encoded, positions)  # type: ignore[arg-type]
    assert sites
