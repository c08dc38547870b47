"""BERT's attention mask in a form transformers uses as given, so that encoding never waits on the host.

Given a (B, L) padding mask, transformers first tests on the host whether it masks anything at all
(``mask.all()``, to skip the mask), which on a GPU makes the host wait for the device on every call; the
text re-encoding of every training batch with dropped tokens would pay it each step. A mask of the prepared
shape is used as it is: transformers 4 takes a (B, L, L) 0/1 mask and turns it into an additive one itself;
transformers 5 takes a 4D mask as given, boolean for SDPA and additive for eager attention. Every form
masks the same keys as the (B, L) mask, so the encoder's output is the same.
"""

from __future__ import annotations

from functools import cache

import torch
from torch import Tensor, nn

# The implementations whose 4D mask format is known; any other (flash attention, say) gets the (B, L) mask.
_PREPARED_FOR = ("sdpa", "eager")


@cache  # read once: the mask is built for every encoded chunk
def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".", 1)[0])


def bert_attention_mask(mask: Tensor, model: nn.Module) -> Tensor:
    """The attention mask to give ``model`` for the (B, L) padding ``mask`` (1 or True where a token is).

    Args:
        mask: (B, L) padding mask, any integer, float or bool dtype.
        model: the transformers BERT that reads it.

    Returns:
        A mask with the same keys masked, in a form transformers does not test on the host.
    """
    keep = mask.bool()
    if _transformers_major() < 5:
        return keep[:, None, :].expand(-1, keep.shape[1], -1).long()
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if implementation not in _PREPARED_FOR:
        return mask
    keep = keep[:, None, None, :]
    if implementation == "sdpa":
        return keep
    dtype = next(model.parameters()).dtype
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(keep, zero, torch.finfo(dtype).min)
