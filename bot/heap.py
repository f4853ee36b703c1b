"""Keep big, short-lived buffers in the heap instead of fresh pages (glibc only).

A snapshot download passes every MiB through several 1 MiB buffers: the socket read, the HTTP parser's
copies, the writing and checking threads. With glibc's default thresholds each buffer is either a fresh
mmap or memory at a heap top that was just trimmed, so every allocation faults in and zeroes 256 new
pages. Measured on a 1 GiB download, that was about half of the receiving thread's CPU. Raising the
mmap and trim thresholds lets glibc reuse the same memory; resident memory stays within the trim
threshold above what is in use. Elsewhere (musl, macOS) nothing changes.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # allocations below this come from the heap (glibc's own cap is 32 MiB)
TRIM_THRESHOLD = 16 << 20  # free memory kept at the top of a heap before it goes back to the system


def keep_buffers_in_heap() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; whether it did."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: no mallopt to call
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
