"""Keep big, short-lived buffers in the heap instead of fresh pages, and give the memory back after (glibc).

A snapshot download passes every MiB through several 1 MiB buffers: the socket read, the HTTP parser's
copies, the writing and checking threads. With glibc's default thresholds each buffer is either a fresh
mmap or memory at a heap top that was just trimmed, so every allocation faults in and zeroes 256 new
pages. Measured on a 1 GiB download, that was about half of the receiving thread's CPU. Raising the
mmap and trim thresholds lets glibc reuse the same memory. The price: each thread heap may keep up to
TRIM_THRESHOLD free at its top; `give_back` returns the rest of the free memory once a transfer ends, so a
long-running bot does not keep more. Elsewhere (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # allocations below this come from the heap (glibc's own cap is 32 MiB)
TRIM_THRESHOLD = 8 << 20  # free memory kept at the top of a heap before it goes back (16 MiB measured no faster)


@functools.cache
def _glibc() -> Any:
    """glibc's functions, or None where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):  # not glibc: no mallopt or malloc_trim to call
        return None
    return libc


def keep_buffers_in_heap() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; whether it did."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def give_back() -> None:
    """Return the heap's free memory to the system (after a big transfer)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
