"""A step that fails on request after its table was read, for the lineage of a failed task."""

from __future__ import annotations

from typing import Any


def maybe_fail(data: Any, fail: bool = False) -> Any:
    """Pass the data through, or raise as a buggy step would."""
    if fail:
        raise RuntimeError("the step failed on purpose")
    return data
