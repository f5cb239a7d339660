"""Handing freed memory back to the operating system.

glibc's allocator keeps freed blocks in its heap for reuse, and after the first large
free it serves blocks of up to 32 MB from the heap instead of mapping them, so the
weights freed after a load (float16 copies, a model used once, float32 weights replaced by
int8 ones) stay in the process's resident memory, fragmented, and later allocations grow
the heap further instead of reusing them. :func:`release_free_memory` returns the heap's
free pages (``malloc_trim(0)``); it is called after loading, after quantizing and after a
model loaded for one use is freed, all rare events, never per synthesis (pages handed back
must be faulted in again). It does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library, or none found)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Collect Python's garbage cycles, then return the C heap's free pages to the OS.

    The cycles matter: modules swapped out by quantization (and transformers models) are
    only freed by the cycle collector. True if the C library could hand pages back.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
