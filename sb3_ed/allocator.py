"""Keeping freed heap memory for reuse, so that a training step does not page its gradients in again.

A step frees its gradients (``optimizer.zero_grad()`` sets them to None) and allocates them again in
the next backward. With glibc's default settings, once tens of MB are free at the top of the heap
they go back to the OS, so every page of the next gradients faults in and is zeroed by the kernel
again (the README gives the measured cost: up to a quarter of an ED step on CPU).
"""

from __future__ import annotations

import ctypes

# mallopt parameters, from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def retain_freed_memory(trim_threshold: int = 1 << 30) -> bool:
    """Makes glibc's malloc keep freed memory for reuse: no allocation is served by its own ``mmap``
    (those are unmapped when freed), and the heap is given back to the OS only when more than
    ``trim_threshold`` bytes at its top are free.

    PyTorch's performance tuning guide suggests jemalloc or TCMalloc for this kind of reuse; this
    gets it from glibc without preloading another allocator. It applies to the whole process, whose
    resident memory then stays near its peak. The training and classification commands call it.
    Returns False, changing nothing, where the C library has no ``mallopt`` (not glibc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError, TypeError):  # no mallopt; TypeError: no CDLL(None) (Windows)
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
