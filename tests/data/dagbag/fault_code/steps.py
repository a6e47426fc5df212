"""A step that fails on request, to prove a failed run leaves the published version alone."""

from __future__ import annotations

from typing import Any


def maybe_fail(data: Any, fail: bool = False) -> Any:
    """Pass the data through, or raise as a buggy step would."""
    if fail:
        raise RuntimeError("the step failed on purpose")
    return data
