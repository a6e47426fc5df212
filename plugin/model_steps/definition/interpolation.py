"""Environment variables in definitions: ``${ASSETS_ROOT}`` and ``${ASSETS_ROOT:-/tmp/models}``.

One file serves dev and prod when its deployment-specific values come from the environment. A
variable that is not set and has no default is a problem to report, never an empty string that
would quietly turn ``${BUCKET}/models`` into ``/models``. ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["UnresolvedReference", "interpolate"]

_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


class UnresolvedReference(Exception):
    """A reference names an unset variable without a default, or is not of a supported form."""


def _substitute(text: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, body = match.groups()
        if escaped:
            return match.group(0)[1:]
        parsed = _BODY.fullmatch(body)
        if parsed is None:
            raise UnresolvedReference(
                f"unsupported reference ${{{body}}}: write ${{VAR}} or ${{VAR:-default}}"
            )
        name, default = parsed.groups()
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise UnresolvedReference(
            f"environment variable {name} is not set; set it or give a default with "
            f"${{{name}:-default}}"
        )

    return _REFERENCE.sub(replace, text)


def interpolate(
    data: Any,
    environ: Mapping[str, str],
    on_problem: Callable[[tuple[str | int, ...], str], None],
    loc: tuple[str | int, ...] = (),
) -> Any:
    """A plain copy of ``data`` (dicts, lists, scalars) with every reference substituted.

    The copy is made of plain containers on purpose: the reader's positioned containers stay
    with the source for locating errors, and never leak into a validated definition. Each
    unresolved reference is reported through ``on_problem(loc, message)`` and its text is kept
    as written, so validation still runs and reports the file's other problems too.
    """
    if isinstance(data, str):
        if "${" not in data:
            return data
        try:
            return _substitute(data, environ)
        except UnresolvedReference as problem:
            on_problem(loc, str(problem))
            return data
    if isinstance(data, dict):
        return {k: interpolate(v, environ, on_problem, (*loc, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, environ, on_problem, (*loc, i)) for i, v in enumerate(data)]
    return data
