"""Rebuilding a definition that already passed validation, without running its rules again.

The parse cache keeps each valid definition as the JSON of its spec, signed with the cache's
key, and only hands it back while the file, the code, the allow-list and every environment
value validation read are unchanged: the rules gave their answer for exactly these inputs. So
a rebuild (:func:`rebuilding`) has pydantic-core check the types and shape again, which is
fast, and skips the Python rules marked with :func:`rule` (patterns, cross-field and semantic
checks, parameter defaults against their own JSON Schema), which are most of validation's cost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

__all__ = ["rebuilding", "rule"]

_REBUILDING: ContextVar[bool] = ContextVar("model_steps_rebuilding", default=False)
F = TypeVar("F", bound=Callable[..., Any])


def rule(check: F) -> F:
    """Mark a validator as a rule a rebuild skips.

    Skipped, it returns its input untouched: the last argument, which is the model for a model
    validator and the value for a field validator.
    """

    @functools.wraps(check)
    def run(*args: Any) -> Any:
        if _REBUILDING.get():
            return args[-1]
        return check(*args)

    return cast(F, run)


@contextmanager
def rebuilding() -> Iterator[None]:
    """Within this block, validation skips the rules: only for specs validated before."""
    token = _REBUILDING.set(True)
    try:
        yield
    finally:
        _REBUILDING.reset(token)
