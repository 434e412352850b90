"""Giving the heap's free pages back to the operating system after a burst of allocations.

glibc's malloc serves large blocks with ``mmap`` and unmaps them when freed, but its threshold
for doing so rises to the largest block freed so far (up to 32 MiB), after which such blocks
come from the heap, where freeing them leaves free pages the process keeps. After a restore
(a million rows decoded in chunks, then freed) ``malloc_trim(0)`` returns them. It is called
once per restore, never per batch (the pages a batch frees are the ones the next one reuses).

:func:`keep_large_blocks_mapped` fixes that threshold instead (``mallopt(M_MMAP_THRESHOLD)``),
so the state's columns, which grow by copying into a larger array, are mapped and unmapped
whole rather than left as free heap pages after each growth. Elsewhere than glibc both do
nothing.
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


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK = 4 << 20
"""Blocks from this size on are mapped: a state column of half a million streams, while a
batch's own arrays (50,000 events of 8 bytes: 400 kB) stay on the heap and are reused."""


def keep_large_blocks_mapped(threshold: int = LARGE_BLOCK) -> None:
    """Serve blocks of ``threshold`` bytes and more with ``mmap`` from now on, whatever was
    freed before (glibc; elsewhere nothing)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, threshold)


__all__ = ["LARGE_BLOCK", "keep_large_blocks_mapped", "release_free_memory"]
