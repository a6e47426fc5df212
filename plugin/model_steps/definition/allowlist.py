"""The import allow-list, by name: which code a model definition may name, checked unimported.

A definition names code to run (``package`` + ``class``, ``callable``, ``save``/``load``,
``pkg.mod:fn`` metrics, method names). Without limits a YAML file would be a way to run
``os.system`` or to unpickle a file from any URL, so each name is held to what its role needs:

- a ``class`` comes from an estimator package (:data:`model_steps.settings.DEFAULT_ALLOWED` and
  what the deployment adds) or from the DAGs folder's own modules;
- a function (``callable``, ``save``, ``load``, a metric) comes from the DAGs folder's own modules,
  from ``sklearn.metrics`` for a metric, or is listed exactly in the deployment's functions;
- only public names: no module, attribute or method starting with ``_`` (so no dunders);
- a library class is called through its estimator methods only (``fit``, ``predict_proba``...),
  and init arguments that make a library open a file, a cache of pickles or a network peer are
  refused.

This module only reads names, so the DAG loader runs it on every parse without importing
anything. What a name resolves to (a class with the methods, a function whose file is in the DAGs
folder) is checked when it is imported: :mod:`model_steps.runtime.resolution`.

References are written ``package.module:attribute`` (the ``callable`` form) or
``package.module.Attribute`` (the last dotted component is the attribute).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from model_steps.errors import ImportRefusedError, closest, hint
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec, StepParameters

__all__ = [
    "ESTIMATOR_METHODS",
    "METRICS_MODULE",
    "RISKY_INIT",
    "ROLES",
    "Purpose",
    "init_problem",
    "is_allowed",
    "is_own_code",
    "method_problem",
    "reference_problem",
    "refused_references",
    "split_reference",
]

Location: TypeAlias = tuple[str | int, ...]
Purpose = Literal["class", "callable", "save", "load", "metric"]

METRICS_MODULE = "sklearn.metrics"
"""Where metric functions may come from besides the DAGs folder and the allowed functions."""
ESTIMATOR_METHODS = frozenset(
    {"fit", "partial_fit", "transform", "inverse_transform", "predict", "decision_function"}
    | {"score_samples", "apply"}
)
ESTIMATOR_METHOD_PREFIXES = ("fit_", "predict_")
"""A library class is called through these (and ``fit_transform``, ``predict_proba``...) only:
its other public methods save and load files (xgboost's ``save_model``) or change settings."""
TEST_MODULES = frozenset({"tests", "conftest"})
"""Module names a library's test code lives under: importing it registers fixtures and imports
pytest, and nothing in it is a model's code."""
_NETWORK = "LightGBM connects to the network peers it names"
_FILE = "the library reads or writes the file it names"
RISKY_INIT: Mapping[str, tuple[tuple[Any, ...], str]] = {
    "memory": (
        (None,),
        "scikit-learn caches fitted steps in a joblib folder at that path and loads the "
        "pickles it finds there",
    ),
    "input": (("content",), "scikit-learn's text vectorizers then read the files the data names"),
    **dict.fromkeys(("machines", "workers", "nodes"), ((None,), _NETWORK)),
    **dict.fromkeys(
        ("machine_list_filename", "machine_list_file", "machine_list", "mlist"), ((None,), _FILE)
    ),
    **dict.fromkeys(("input_model", "output_model"), ((None,), _FILE)),
}
"""Init arguments of library classes that reach files, caches or the network: the values a
definition may give them, and why others are refused. ``n_jobs`` is not here: it only decides
how many of the worker's cores a fit uses."""
ROLES: Mapping[Purpose, str] = {
    "callable": "a callable step",
    "save": "a save function",
    "load": "a load function",
    "metric": "a metric function",
}
"""How errors name each role a function can have."""


def is_allowed(module: str, allowed: Sequence[str]) -> bool:
    """Whether ``module`` is one of the prefixes or below one, matching whole components.

    ``sklearn.linear_model`` is below ``sklearn``; ``sklearn_evil`` is not.
    """
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in allowed)


def is_own_code(module: str, allow: AllowList) -> bool:
    """Whether ``module`` is one of the DAGs folder's own modules (or inside one)."""
    return module.partition(".")[0] in allow.code_modules


def split_reference(reference: str) -> tuple[str, str]:
    """``pkg.mod:attr`` and ``pkg.mod.attr`` both become ``("pkg.mod", "attr")``.

    Raises:
        ImportRefusedError: the text does not name a module and an attribute.
    """
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


def reference_problem(
    module: str, attribute: str | None, purpose: Purpose, allow: AllowList
) -> str | None:
    """Why naming ``module:attribute`` for ``purpose`` is refused, else None.

    ``attribute`` is None when only the module is known (a step's ``package``).
    """
    if attribute is not None and f"{module}:{attribute}" in allow.functions and purpose != "class":
        return None  # the deployment named this very function
    private = [part for part in (*module.split("."), attribute or "") if part.startswith("_")]
    if private:
        return f"{private[0]!r} is private (starts with '_'): only public names may be used"
    top = module.partition(".")[0]
    if top in allow.code_modules:
        if top in sys.stdlib_module_names:
            return (
                f"{top!r} is a standard-library module: a module of that name in the DAGs "
                "folder does not replace it (Python imports the standard one), so rename yours"
            )
        return None
    tests = [part for part in module.split(".") if part in TEST_MODULES]
    if tests:
        return f"module {module!r} is test code ({tests[0]!r}), not code a model may run"
    if purpose == "class":
        if is_allowed(module, allow.packages):
            return None
        return f"module {module!r} is not an allowed import: {_class_sources(allow)}"
    if purpose == "metric" and is_allowed(module, (METRICS_MODULE,)):
        return None
    return (
        f"{module}:{attribute} is not an allowed function: {ROLES[purpose]} must be a function "
        f"in the DAGs folder's own modules{_own(allow)}"
        f"{', in sklearn.metrics' if purpose == 'metric' else ''}, or be listed in "
        "MODEL_STEPS_ALLOWED_FUNCTIONS"
    )


def _own(allow: AllowList) -> str:
    own = [name for name in allow.code_modules if name not in sys.stdlib_module_names]
    return f" ({', '.join(own)})" if own else ""


def _class_sources(allow: AllowList) -> str:
    return (
        f"a step's class may come from {', '.join(allow.packages)} or the DAGs folder's own "
        f"modules{_own(allow)}; to allow another package, add it to MODEL_STEPS_ALLOWED_IMPORTS"
    )


def method_problem(name: str, library: bool) -> str | None:
    """Why calling method ``name`` is refused, else None; ``library``: not the DAGs folder's."""
    if name.startswith("_"):
        return f"method {name!r} is private (starts with '_'): only public methods may be called"
    if library and name not in ESTIMATOR_METHODS and not name.startswith(ESTIMATOR_METHOD_PREFIXES):
        known = sorted(ESTIMATOR_METHODS | {"fit_transform", "fit_predict", "predict_proba"})
        return (
            f"method {name!r} is not an estimator method: a library class is called through "
            "fit, transform or predict and their variants (partial_fit, fit_transform, "
            "predict_proba, decision_function, score_samples, inverse_transform, apply)"
            f"{hint(closest(name, known))}"
        )
    return None


def init_problem(name: str, value: Any) -> str | None:
    """Why giving a library class init argument ``name`` this value is refused, else None."""
    if name not in RISKY_INIT:
        return None
    allowed, why = RISKY_INIT[name]
    if value in allowed:
        return None
    choices = " or ".join("null" if v is None else repr(v) for v in allowed)
    return f"init argument {name!r} may only be {choices}: otherwise {why}"


def refused_references(spec: ModelSpec, allow: AllowList) -> list[tuple[Location, str]]:
    """Every name in ``spec`` that its role does not allow, located in the model.

    Nothing is imported, so validating a definition never runs the code it names.
    """
    return [
        (("steps", index, "parameters", *location), problem)
        for index, step in enumerate(spec.steps)
        for location, problem in _step_problems(step.parameters, allow)
    ]


def _step_problems(params: StepParameters, allow: AllowList) -> Iterator[tuple[Location, str]]:
    """(location, problem) of each name a step gives that its role does not allow."""
    if params.package is not None and params.class_ is not None:
        library = not is_own_code(params.package, allow)
        checks: list[tuple[Location, str | None]] = [
            (("package",), reference_problem(params.package, None, "class", allow)),
            (("class",), reference_problem(params.package, params.class_, "class", allow)),
        ]
        if checks[0][1] is not None:  # the module is refused: the class adds nothing
            checks.pop()
        for role in ("fit", "transform", "predict"):
            checks.append(
                (("methods", role), method_problem(getattr(params.methods, role), library))
            )
        if library:
            checks.extend((("init", key), init_problem(key, v)) for key, v in params.init.items())
        yield from ((loc, problem) for loc, problem in checks if problem)
    for location, purpose, reference in _function_references(params):
        module, attribute = split_reference(reference)
        problem = reference_problem(module, attribute, purpose, allow)
        if problem:
            yield location, problem


def _function_references(params: StepParameters) -> Iterator[tuple[Location, Purpose, str]]:
    """(location, purpose, reference) of each function a step names."""
    named: dict[Purpose, str | None] = {
        "callable": params.callable,
        "save": params.save,
        "load": params.load,
    }
    for purpose, reference in named.items():
        if reference is not None:
            yield (purpose,), purpose, reference
    for position, metric in enumerate(params.metrics):
        if isinstance(metric, str):
            if ":" in metric:
                yield ("metrics", position), "metric", metric
        else:
            yield ("metrics", position, "function"), "metric", metric.function
