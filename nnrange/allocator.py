"""Make glibc's malloc keep freed memory for reuse instead of handing it back at once.

The engines allocate and free arrays of a few megabytes many times per call. With glibc's
defaults each such array is a fresh mapping (or the heap top is trimmed right after use), so
every allocation page-faults over its whole size, which cost up to a third of CROWN's time on the
mnistfc networks. Raising the mmap and trim thresholds lets freed blocks be reused. The cost is
that up to ``_TRIM`` bytes of freed memory stay mapped in the process.

Set ``NNRANGE_KEEP_MALLOC=1`` to leave the allocator alone. Other C libraries (musl, macOS,
Windows) are left alone too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP = 32 * 1024 * 1024  # glibc's largest allowed mmap threshold on 64-bit systems
_TRIM = 128 * 1024 * 1024


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds; True if they were set."""
    if os.environ.get("NNRANGE_KEEP_MALLOC") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM))
