from __future__ import annotations

import pytest
import torch

from msabench.protocols.hashing import (
    MASK32,
    ONE,
    fold_key,
    hash24,
    hash32,
    mix,
    mix_int,
    rank_within,
    scaled_threshold,
    threshold,
    uniform,
)

KEY = (1, 1111, 2, 1, 0)


def test_golden_values_pin_the_definition() -> None:
    # These values define every mask: a change here silently changes every published number.
    assert [mix_int(x) for x in (0, 1, 12345, MASK32)] == [0, 1457001479, 2532430950, 2234064411]
    assert (fold_key(()), fold_key((1,)), fold_key((1, 1111, 2))) == (625341585, 1711857503, 3777582826)
    assert hash24(KEY, torch.arange(4), 3).tolist() == [
        [3941815, 10279986, 2515918],
        [9733535, 2844573, 6566284],
        [3136118, 11326187, 6949732],
        [2282059, 6126723, 10153983],
    ]
    assert hash32((7,), torch.tensor([0, 5])).tolist() == [2165999697, 3779537626]


def test_tensor_mix_equals_python_reference_and_never_leaves_32_bits() -> None:
    values = torch.randint(0, 1 << 32, (5000,), generator=torch.Generator().manual_seed(0))
    values = torch.cat([values, torch.tensor([0, 1, MASK32, MASK32 - 1])])
    mixed = mix(values)
    assert mixed.tolist() == [mix_int(v) for v in values.tolist()]
    assert int(mixed.min()) >= 0 and int(mixed.max()) <= MASK32


def test_mix_is_a_bijection_on_a_block_of_inputs() -> None:
    block = torch.arange(1 << 16) * 65521  # spread over the 32-bit range
    assert mix(block).unique().numel() == block.numel()


def test_hash_depends_only_on_key_index_and_column() -> None:
    index = torch.tensor([5, 0, 3, 9])
    full = hash24(KEY, torch.arange(10), 6)
    assert torch.equal(hash24(KEY, index, 6), full[index])
    assert torch.equal(hash24(KEY, index.to(torch.int32), 6), full[index])
    assert torch.equal(hash24(KEY, index, 4), full[index, :4])  # a longer padded length does not move draws
    assert not torch.equal(hash24((1, 1112, 2, 1, 0), index, 6), full[index])
    assert hash24((1, -5, 0), index).shape == (4,)  # negative seeds are valid keys


def test_uniforms_are_uniform_and_independent() -> None:
    u = uniform(hash24(KEY, torch.arange(1024), 256)).double()
    n = u.numel()
    assert abs(u.mean().item() - 0.5) < 4 * (1 / 12 / n) ** 0.5
    z = (u - 0.5) * 12**0.5
    for a, b in ((z[:, :-1], z[:, 1:]), (z[:-1], z[1:])):  # neighbouring steps, neighbouring samples
        assert abs((a * b).mean().item()) < 4 / a.numel() ** 0.5
    counts = torch.histc(u.float(), bins=16, min=0, max=1)
    chi2 = ((counts - n / 16) ** 2 / (n / 16)).sum().item()
    assert chi2 < 40  # 15 degrees of freedom; p ~ 5e-4


def test_uniform_is_exact_in_float32() -> None:
    bits = torch.tensor([0, 1, ONE // 2, ONE - 1])
    assert uniform(bits).tolist() == [0.0, 2**-24, 0.5, 1 - 2**-24]


def test_thresholds() -> None:
    # 0.3 * 2^24 = 5033164.8: draws 0..5033164 stand for u < 0.3
    assert (threshold(0.0), threshold(0.3), threshold(0.5), threshold(1.0)) == (0, 5033165, 1 << 23, ONE)
    bits = torch.tensor([0, 1 << 23, ONE - 1])
    # rate = 0.9 * u with 0.9 stored as round(0.9 * 2^24) = 15099494: thresholds 0, 15099494 / 2, ceil(...)
    assert scaled_threshold(bits, 0.9).tolist() == [0, 7549747, 15099494]
    assert scaled_threshold(bits, 1.0).tolist() == bits.tolist()


def test_rank_within_breaks_ties_by_position() -> None:
    assert rank_within(torch.tensor([5, 2, 5, 0])).tolist() == [2, 1, 3, 0]
    columns = torch.tensor([[3, 1], [1, 1], [2, 0]])
    assert rank_within(columns).tolist() == [[2, 1], [0, 2], [1, 0]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_bit_for_bit() -> None:
    index = torch.arange(3000)
    assert torch.equal(hash32(KEY, index.cuda(), 500).cpu(), hash32(KEY, index, 500))
    scores = hash32(KEY, index, 3)
    assert torch.equal(rank_within(scores.cuda()).cpu(), rank_within(scores))
