"""BERT's prepared attention mask: the same encoding as the (B, L) padding mask, without a host-side test."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from transformers import AutoModel

from msabench.datamodules.bert_mask import bert_attention_mask
from msabench.tools.gpu_check import cpu_sync_proxy


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_prepared_mask_encodes_like_the_padding_mask_and_is_never_tested_on_the_host(
    tiny_bert: Path, implementation: str
) -> None:
    model = AutoModel.from_pretrained(tiny_bert, local_files_only=True, attn_implementation=implementation)
    model.eval()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (4, 9), generator=generator)
    lengths = torch.tensor([9, 5, 3, 9])  # rows with and without padding
    mask = (torch.arange(9)[None] < lengths[:, None]).long()
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).last_hidden_state
        sites: Counter[str] = Counter()
        with cpu_sync_proxy(sites):
            prepared = bert_attention_mask(mask, model)
            got = model(input_ids=ids, attention_mask=prepared).last_hidden_state
    assert not sites, dict(sites)
    valid = mask.bool()
    torch.testing.assert_close(got[valid], expected[valid], rtol=0, atol=1e-5)
    # A padding mask without padding is masked the same as none: still no host test.
    full = torch.ones_like(mask)
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=ids, attention_mask=bert_attention_mask(full, model)).last_hidden_state,
            model(input_ids=ids).last_hidden_state,
            rtol=0,
            atol=1e-5,
        )
