"""Giving the heap's free pages back to the operating system after a burst of allocations.

glibc's malloc serves large blocks with ``mmap`` and unmaps them when freed, but its threshold
for doing so rises to the largest block freed so far (up to 32 MiB), after which such blocks
come from the heap, where freeing them leaves free pages the process keeps. After a restore
(a million rows decoded in chunks, then freed) ``malloc_trim(0)`` returns them. It is called
once per restore, never per batch (the pages a batch frees are the ones the next one reuses).
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def release_free_memory() -> None:
    """Return the heap's free pages to the operating system (glibc; elsewhere nothing)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


__all__ = ["release_free_memory"]
