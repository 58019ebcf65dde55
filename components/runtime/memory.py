"""The C allocator: kept memory for big buffers soon freed, or freed memory given back.

glibc's malloc gives memory back to the kernel as soon as 2 × its last freed big block sits
free at a heap's top, and serves blocks above a moving threshold from fresh ``mmap``s. A
fabric's put allocates a few MiB (the segment's copy, the coder's chunks) and frees them
before the next: every put then faulted its pages in again, and the kernel's page faults and
zeroing cost 10 × the coding (a 1 MiB isal encode took 1.4 ms; 0.1 ms with the thresholds
below). Redis and most servers use an allocator that keeps such memory (jemalloc).

A federation's vectorised training task is the other case: a burst of tensors, then the
aggregation; each pool thread's heap kept its largest burst, 60 MB at 2,048 devices, so the
task gives it back when it ends (:func:`release_freed_memory`).
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

KEEP_FREED_BYTES = 64 * 2**20
"""Freed memory a heap keeps for reuse before returning it to the kernel (32 MiB was too
little for a 16 MiB put: its puts ran at a third of the speed)."""

MMAP_FROM_BYTES = 4 * 2**20
"""Blocks from this size up get their own mapping and go back to the kernel when freed, so a
heap never holds more than its ``KEEP_FREED_BYTES`` of them."""

_ENV = {"MALLOC_TRIM_THRESHOLD_": KEEP_FREED_BYTES, "MALLOC_MMAP_THRESHOLD_": MMAP_FROM_BYTES}
_done: bool | None = None
_lock = threading.Lock()


def keep_freed_memory() -> bool:
    """Let this process's heaps keep up to 64 MiB of freed memory; once per process.

    Processes it starts later inherit the setting through glibc's environment variables. A
    threshold the user already set in the environment is left as it is, and where the C
    library is not glibc nothing changes.

    Returns:
        Whether this process's allocator now keeps freed memory.

    """
    global _done
    with _lock:
        if _done is not None:
            return _done
        try:
            chosen = {name: int(os.environ.setdefault(name, str(v))) for name, v in _ENV.items()}
            mallopt = ctypes.CDLL(None).mallopt
        except (ValueError, OSError, AttributeError):  # not a number; not glibc (musl, macOS)
            _done = False
            return False
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        _done = bool(
            mallopt(_M_MMAP_THRESHOLD, chosen["MALLOC_MMAP_THRESHOLD_"])
            and mallopt(_M_TRIM_THRESHOLD, chosen["MALLOC_TRIM_THRESHOLD_"])
        )
        return _done


_trim: Any = None


def release_freed_memory() -> bool:
    """Give the memory the heaps hold free back to the kernel now (glibc's ``malloc_trim``).

    For the end of a burst of big temporary tensors (a vectorised training task): glibc keeps
    them for reuse in each thread's heap, so a process's memory grows to its largest burst
    per thread; on 2,048 devices a federation's process held 60 MB more than it used.

    Returns:
        Whether anything was released (False where the C library is not glibc).

    """
    global _trim
    if _trim is None:
        try:
            _trim = ctypes.CDLL(None).malloc_trim
            _trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _trim = False
    return bool(_trim and _trim(0))
