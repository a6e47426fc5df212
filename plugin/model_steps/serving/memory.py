"""Keeping a serving process's memory to what its loaded versions need (glibc's malloc knobs).

A handler holds at most two versions, but the C allocator keeps what they freed: unpickling a
version allocates from the loading thread's own arena, and freed pages stay mapped. Without
these, each reload ratchets the process up by a few versions' worth. Where the C library is not
glibc (musl, macOS) both are no-ops.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

__all__ = ["limit_malloc_arenas", "release_freed_memory"]

M_ARENA_MAX = -8
"""``mallopt``'s parameter number for the arena limit (glibc's malloc.h)."""


@cache
def _glibc(name: str) -> Any:
    """A function of the C library the process already runs on (looked up on first use)."""
    return getattr(ctypes.CDLL(None), name, None)


def release_freed_memory() -> None:
    """Give the heap a dropped version leaves behind back to the OS."""
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Share a few malloc arenas between threads, as ``MALLOC_ARENA_MAX`` would.

    glibc gives busy threads arenas of their own (up to eight per core), so the poll thread's
    loads and the request threads' predictions each keep their own high-water mark. Called once
    by ``model-steps serve`` before it starts any thread; an explicit ``MALLOC_ARENA_MAX`` in the
    environment wins, since glibc read it at start-up and this is only called without it.
    """
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt(M_ARENA_MAX, arenas)
