r"""Text for an operator's terminal: control characters from definitions and stores escaped.

A description, a step name or a store's manifest is written by a YAML author or whoever can
write the store; printed as it is, an escape sequence in it would clear the operator's screen,
set the window title or write the clipboard (OSC 52). Everything the CLI prints goes through
:func:`escaped_output`, which shows each such character as a visible escape (``\\x1b``) and
keeps line breaks and tabs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["EscapingStream", "escape_controls", "escaped_output"]

_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls but the line feed and tab, DEL, and the bidirectional overrides that make
text read other than it is stored."""


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    r"""``text`` with every control character shown as its escape (``\\x1b``, ``\\u202e``)."""
    return _CONTROLS.sub(_visible, text)


class EscapingStream:
    """A text stream writing to ``target`` with control characters escaped."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        """Write ``text`` escaped; returns the length of ``text`` as given, as streams do."""
        self.target.write(escape_controls(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)


@contextmanager
def escaped_output() -> Iterator[None]:
    """For the block, ``sys.stdout`` and ``sys.stderr`` escape control characters."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(out), EscapingStream(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
