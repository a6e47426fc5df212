"""Bounds on what a template may build: a few bytes of template must not become gigabytes.

Jinja's sandbox bounds ``range`` but not arithmetic or the filters that grow text by their
arguments; a task renders templates from the YAML author and the trigger config, so each of
these is checked before the value is built (the size of ``left ** right`` is known from its
operands' bit lengths, the size of ``'x' | center(n)`` from ``n``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["GROWTH", "MAX_BITS", "MAX_SIZE", "bounded_filter", "repeats_too_much", "result_bits"]

MAX_SIZE = 100_000
"""Largest string or list a template may build with ``*`` (Jinja's own bound on ``range``)."""
MAX_BITS = 4096
"""Largest whole number (in bits, about 1,200 digits) a template may build with ``*`` or ``**``:
bounding the exponent alone let ``((9**1024)**1024)**1024`` run for 40 s."""


def _lines(value: Any) -> int:
    return str(value).count("\n") + 1


def _format_growth(value: Any, *args: Any, **kwargs: Any) -> int:
    widths = [int(w) for w in re.findall(r"%[-+ #0]*(\d+)", str(value))]
    widths += [int(w) for w in re.findall(r"\.(\d+)", str(value))]
    star = "*" in str(value)
    return MAX_SIZE + 1 if star else len(str(value)) + sum(widths) + _arguments(args, kwargs)


def _arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    return sum(len(str(a)) for a in (*args, *kwargs.values()))


def _replace_growth(value: Any, old: Any = "", new: Any = "", count: Any = None) -> int:
    text = str(value)
    times = text.count(str(old)) if str(old) else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * len(str(new))


GROWTH: Mapping[str, Callable[..., int]] = {
    "center": lambda value, width=80: max(len(str(value)), int(width)),
    "format": _format_growth,
    "replace": _replace_growth,
    "join": lambda value, d="", attribute=None: (
        len(str(d)) * len(value) if hasattr(value, "__len__") else 0
    ),
    "indent": lambda value, width=4, *args, **kwargs: (
        len(str(value)) + _lines(value) * (int(width) if not isinstance(width, str) else len(width))
    ),
    "wordwrap": lambda value, width=79, break_long_words=True, wrapstring=None, *args: (
        len(str(value)) * (2 + len(str(wrapstring or "\n")))
    ),
}
"""Jinja's filters whose result can be far larger than their input, each with a bound on the
size of its result, checked before the filter runs (``'x' | center(10**9)`` is a gigabyte)."""


def bounded_filter(function: Callable[..., Any], growth: Callable[..., int]) -> Callable[..., Any]:
    """``function`` refusing to build a value over ``MAX_SIZE`` characters."""
    from jinja2.exceptions import SecurityError

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # Jinja passes the environment or context first to some filters: skip it for the bound.
        values = [a for a in args if not _is_jinja_state(a)]
        try:
            size = growth(*values, **kwargs)
        except (TypeError, ValueError):
            size = 0  # the filter itself reports arguments it cannot use
        if size > MAX_SIZE:
            raise SecurityError(f"a template may not build values over {MAX_SIZE} characters")
        return function(*args, **kwargs)

    return bounded


def _is_jinja_state(value: Any) -> bool:
    from jinja2 import Environment
    from jinja2.nodes import EvalContext
    from jinja2.runtime import Context

    return isinstance(value, Environment | Context | EvalContext)


def repeats_too_much(left: Any, right: Any) -> bool:
    """Whether ``left * right`` repeats a string or list past :data:`MAX_SIZE` items."""
    sized = left if isinstance(left, str | list | tuple) else right
    count = right if sized is left else left
    return (
        isinstance(sized, str | list | tuple)
        and isinstance(count, int)
        and len(sized) * count > MAX_SIZE
    )


def result_bits(operator: str, left: Any, right: Any) -> float:
    """The size in bits of the whole number ``left <operator> right`` would be, before it is.

    Only whole-number results can grow without bound (floats overflow at once), so only
    ``int`` operands are counted; booleans count as the 0 or 1 they are.
    """
    if not (isinstance(left, int) and isinstance(right, int)):
        return 0
    if operator == "*":
        return left.bit_length() + right.bit_length()
    if right <= 1 or abs(left) <= 1:
        return abs(left).bit_length()
    return abs(left).bit_length() * right  # an upper bound, never below the truth
