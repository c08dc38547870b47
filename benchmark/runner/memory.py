"""Hand the memory a run has freed back to the system, so that a run's resident memory stays flat.

On Linux, glibc's allocator keeps the memory of freed tensors in its heap for reuse, and under the shapes that
change from batch to batch (every batch is padded to its own longest sample; DERL's masked compressor and
decoders follow them) the heap fragments: freed blocks no later tensor fits, counted as resident memory. The
main job's anonymous resident memory grew by about 0.3 GiB an epoch (1.95 GiB after epoch 1, 3.09 GiB after
epoch 5; ``python -m msabench.tools.bench_epoch_memory``), which a sweep worker that trains run after run
would carry to the end. ``malloc_trim(0)`` returns every free page of every arena to the system; done after
each training epoch, each validation pass and the test, it keeps the heap at what the run really holds.
Elsewhere (macOS, musl, Windows) there is no such call and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

import lightning as L


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """The C library's ``malloc_trim`` (glibc), or None where it has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the system; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class ReleaseFreedMemory(L.Callback):
    """Calls :func:`release_freed_memory` after every training epoch, validation pass and test pass."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        release_freed_memory()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        release_freed_memory()

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        release_freed_memory()
