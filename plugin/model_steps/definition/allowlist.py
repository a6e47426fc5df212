"""The import allow-list: which modules a model definition may name.

A definition names code to run (``package`` + ``class``, ``callable``, ``save``/``load``,
``pkg.mod:fn`` metrics). Without a limit a YAML file would be a way to run ``os.system``, so
only module prefixes on the allow-list are imported: the scientific stack, the deployment's own
additions (``MODEL_STEPS_ALLOWED_IMPORTS``) and the modules in the DAGs folder, which are already
trusted code. Checking a definition (:func:`refused_references`) imports nothing.

References are written ``package.module:attribute`` (the ``callable`` form) or
``package.module.Attribute`` (the last dotted component is the attribute).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeAlias

from model_steps.errors import (
    ImportRefusedError,
    MissingAttributeError,
    MissingModuleError,
    did_you_mean,
)
from model_steps.libraries import install_hint

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec, StepParameters

__all__ = [
    "import_object",
    "is_allowed",
    "refused_references",
]
Location: TypeAlias = tuple[str | int, ...]


def is_allowed(module: str, allowed: Sequence[str]) -> bool:
    """Whether ``module`` is one of the prefixes or below one, matching whole components.

    ``sklearn.linear_model`` is below ``sklearn``; ``sklearn_evil`` is not.
    """
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in allowed)


def import_object(reference: str, allowed: Sequence[str]) -> Any:
    """Import ``package.module:attribute`` (or ``package.module.Attribute``) if allowed.

    The check runs before anything is imported, and again on where the object was defined,
    so an allowed module cannot hand out what it imported from elsewhere (``pkg.mod:system``).

    Raises:
        ImportRefusedError: the module is not allowed or the attribute is private.
        MissingModuleError: the module is not installed.
        MissingAttributeError: the module has no such attribute.
    """
    module_name, attribute = _split_reference(reference)
    _refuse(module_name, attribute, allowed, reference)
    module = _import_module(module_name, reference)
    if not hasattr(module, attribute):
        public = [name for name in dir(module) if not name.startswith("_")]
        suggestions = did_you_mean(attribute, public)
        hint = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
        raise MissingAttributeError(
            f"{reference!r}: module {module_name!r} has no attribute {attribute!r}{hint}",
            suggestions=suggestions,
        )
    found = getattr(module, attribute)
    origin = found.__name__ if isinstance(found, ModuleType) else getattr(found, "__module__", None)
    if isinstance(origin, str) and not is_allowed(origin, allowed):
        raise ImportRefusedError(
            f"{reference!r} is defined in {origin!r}, which is not an allowed import: "
            f"{_how_to_allow(allowed)}",
            module=origin,
            allowed=allowed,
        )
    return found


def _split_reference(reference: str) -> tuple[str, str]:
    """``pkg.mod:attr`` and ``pkg.mod.attr`` both become ``("pkg.mod", "attr")``."""
    module, separator, attribute = reference.partition(":")
    if not separator:
        module, _, attribute = reference.rpartition(".")
    if not (module and attribute):
        raise ImportRefusedError(
            f"{reference!r} is not a reference: expected 'package.module:attribute'",
            module=module,
            allowed=(),
        )
    return module, attribute


def _refuse(module: str, attribute: str, allowed: Sequence[str], reference: str) -> None:
    """Raise when the module is not allowed or the attribute is private."""
    problem = _problem(module, attribute, allowed)
    if problem:
        raise ImportRefusedError(f"{reference!r}: {problem}", module=module, allowed=allowed)


def _problem(module: str | None, attribute: str | None, allowed: Sequence[str]) -> str | None:
    """Why a reference would be refused (``None`` parts go unchecked), else None."""
    if module is not None and not is_allowed(module, allowed):
        return f"module {module!r} is not an allowed import: {_how_to_allow(allowed)}"
    if attribute is not None and attribute.startswith("_"):
        return f"{attribute!r} is private (starts with '_'): only public names may be used"
    return None


def _how_to_allow(allowed: Sequence[str]) -> str:
    return (
        f"definitions may use modules under {', '.join(allowed)}; to allow more, add "
        "comma-separated module prefixes to MODEL_STEPS_ALLOWED_IMPORTS, or put your code in "
        "the DAGs folder"
    )


def _import_module(module: str, reference: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or module
        raise MissingModuleError(
            f"{reference!r}: cannot import {module!r}, no module named {missing!r}; "
            f"install it where the tasks run ({install_hint(missing)})",
            module=missing,
        ) from error


def refused_references(spec: ModelSpec, allowed: Sequence[str]) -> list[tuple[Location, str]]:
    """Every reference in ``spec`` that :func:`import_object` would refuse, located in the model.

    Nothing is imported, so validating a definition never runs the code it names.
    """
    refused: list[tuple[Location, str]] = []
    for index, step in enumerate(spec.steps):
        for location, module, attribute in _references(step.parameters):
            problem = _problem(module, attribute, allowed)
            if problem:
                refused.append((("steps", index, "parameters", *location), problem))
    return refused


def _references(
    params: StepParameters,
) -> Iterator[tuple[Location, str | None, str | None]]:
    """(location, module, attribute) of each piece of code a step names."""
    if params.package is not None:
        yield ("package",), params.package, None
    if params.class_ is not None:
        yield ("class",), None, params.class_
    named = {"callable": params.callable, "save": params.save, "load": params.load}
    for key, reference in named.items():
        if reference is not None:
            yield (key,), *_split_reference(reference)
    for position, metric in enumerate(params.metrics):
        if ":" in metric:
            yield ("metrics", position), *_split_reference(metric)
