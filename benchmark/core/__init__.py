"""The torch-free core: the shared vocabulary, the batch contract, atomic file writing.

Everything here is the bottom layer of the package: it imports nothing from the rest of msabench except
:mod:`msabench.errors` (itself torch-free), and nothing here loads torch or Lightning at import time
except :mod:`msabench.core.batch`, which needs only ``torch.Tensor`` for its type. The layers above and
the rule that imports point down only are drawn in the README's Development section.
"""
