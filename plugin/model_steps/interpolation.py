"""Environment variables in definitions: ``${ASSETS_ROOT}`` and ``${ASSETS_ROOT:-/tmp/models}``.

One file serves dev and prod when its deployment-specific values come from the environment. A
variable that is not set and has no default is a problem to report, never an empty string that
would quietly turn ``${BUCKET}/models`` into ``/models``. ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MissingVariable", "interpolate"]

_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingVariable(Exception):
    """A referenced environment variable is not set and has no default."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _substitute(text: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise MissingVariable(name)

    return _REFERENCE.sub(replace, text)


def interpolate(
    data: Any,
    environ: Mapping[str, str],
    on_missing: Callable[[tuple[str | int, ...], str], None],
    loc: tuple[str | int, ...] = (),
) -> Any:
    """Replace references in every string value of ``data``, in place, keeping containers.

    Containers are edited in place so the positions the YAML reader attached to them survive.
    Each missing variable is reported through ``on_missing(loc, name)`` and the text is left as
    written, so validation still runs and reports the file's other problems too.
    """
    if isinstance(data, str):
        if "${" not in data:
            return data
        try:
            return _substitute(data, environ)
        except MissingVariable as missing:
            on_missing(loc, missing.name)
            return data
    if isinstance(data, dict):
        for key, value in data.items():
            data[key] = interpolate(value, environ, on_missing, (*loc, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            data[index] = interpolate(value, environ, on_missing, (*loc, index))
    return data
