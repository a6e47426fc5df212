"""A run's trigger config, checked against the parameters its model declares.

Airflow merges a trigger config into ``params`` whatever its keys, so ``n_estimator`` for
``n_estimators`` would be ignored by every step yet recorded in the manifest as if used. The
operators call :func:`check_run_config` before a task does any work (it is the first thing the
first task of each train and infer run does), so such a run fails at once and says which key
was meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from model_steps.errors import UnknownParameterError, did_you_mean

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec

__all__ = ["check_run_config"]

_SHOWN = 10
"""Unknown keys named in the error (a hostile config may hold thousands)."""
_LONGEST = 60


def check_run_config(spec: ModelSpec, conf: Mapping[str, Any]) -> None:
    """Refuse a trigger config that sets parameters the model does not declare.

    Raises:
        UnknownParameterError: naming each unknown key, its near misses and the declared ones.
    """
    unknown = sorted(key for key in conf if key not in spec.parameters)
    if not unknown:
        return
    declared = sorted(spec.parameters)
    described = []
    suggestions: list[str] = []
    for key in unknown[:_SHOWN]:
        near = did_you_mean(key[:_LONGEST], declared)
        suggestions.extend(near)
        hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
        shown = key if len(key) <= _LONGEST else key[:_LONGEST] + "..."
        described.append(f"{shown!r}{hint}")
    if len(unknown) > _SHOWN:
        described.append(f"and {len(unknown) - _SHOWN} more")
    raise UnknownParameterError(
        f"the run's config sets {', '.join(described)}, which model {spec.name!r} does not "
        f"declare; its parameters are: {', '.join(declared) or 'none'}. Fix the trigger "
        "config, or declare the parameter under 'parameters' in the definition",
        unknown=unknown,
        suggestions=suggestions,
    )
