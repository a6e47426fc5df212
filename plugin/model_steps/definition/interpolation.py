"""Environment variables in definitions: ``${MODEL_STEPS_ROOT}`` and ``${MODEL_STEPS_ROOT:-/tmp}``.

One file serves dev and prod when its deployment-specific values come from the environment. Only
variables the deployment allows are read (:func:`model_steps.settings.env_refusal`): the parsing
process also holds Airflow's connections and its API server's JWT secret, and anything
interpolated is shown to every viewer of the DAGs. A variable that is not set and has no default
is a problem to report, never an empty string that would quietly turn ``${BUCKET}/models`` into
``/models``. ``$${`` writes a literal ``${``.

Each substituted value is remembered (:attr:`Interpolation.values`), so the loader can keep it
out of error messages: a message names the reference as written, never what it resolved to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from model_steps.settings import env_refusal

__all__ = ["Interpolation", "UnresolvedReference", "interpolate"]

_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)

Loc = tuple[str | int, ...]


class UnresolvedReference(Exception):
    """A reference names a refused or unset variable, or is not of a supported form."""


@dataclass
class Interpolation:
    """What interpolating one file did: where values came from the environment, and which."""

    locations: dict[Loc, str] = field(default_factory=dict)
    """Each interpolated string's location and its text as written (with its references)."""
    values: dict[str, str] = field(default_factory=dict)
    """Each substituted value, and the reference it came from (``${NAME}``)."""


def _substitute(text: str, environ: Mapping[str, str], found: Interpolation) -> str:
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
        refusal = env_refusal(name, environ)
        if refusal is not None:
            raise UnresolvedReference(refusal)
        if name in environ:
            found.values.setdefault(environ[name], f"${{{name}}}")
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
    on_problem: Callable[[Loc, str], None],
    found: Interpolation | None = None,
    loc: Loc = (),
) -> Any:
    """A plain copy of ``data`` (dicts, lists, scalars) with every reference substituted.

    The copy is made of plain containers on purpose: the reader's positioned containers stay
    with the source for locating errors, and never leak into a validated definition. Each
    unresolved reference is reported through ``on_problem(loc, message)`` and its text is kept
    as written, so validation still runs and reports the file's other problems too. What was
    substituted, and where, is recorded in ``found``.
    """
    found = found if found is not None else Interpolation()
    if isinstance(data, str):
        if "${" not in data:
            return data
        try:
            result = _substitute(data, environ, found)
        except UnresolvedReference as problem:
            on_problem(loc, str(problem))
            return data
        if result != data:
            found.locations[loc] = str(data)
        return result
    if isinstance(data, dict):
        return {k: interpolate(v, environ, on_problem, found, (*loc, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, environ, on_problem, found, (*loc, i)) for i, v in enumerate(data)]
    return data
