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
  with init arguments named like Python arguments; those that make a library open a file, a
  cache of pickles or a network peer are refused, and so is a LightGBM value that would add
  parameters to the ``key=value`` text LightGBM reads them from.

This module only reads names, so the DAG loader runs it on every parse without importing
anything. What a name resolves to (a class with the methods, a function whose file is in the DAGs
folder) is checked when it is imported: :mod:`model_steps.runtime.resolution`.

References are written ``package.module:attribute`` (the ``callable`` form) or
``package.module.Attribute`` (the last dotted component is the attribute).
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from model_steps.definition.templates import is_template
from model_steps.errors import ImportRefusedError, closest, hint
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec, StepParameters

__all__ = [
    "ESTIMATOR_METHODS",
    "LIGHTGBM_FILES",
    "LIGHTGBM_RISKY",
    "METRICS_MODULE",
    "RISKY_INIT",
    "ROLES",
    "Purpose",
    "init_problem",
    "init_problems",
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
RISKY_INIT: Mapping[str, tuple[tuple[Any, ...], str]] = {
    "memory": (
        (None,),
        "scikit-learn caches fitted steps in a joblib folder at that path and loads the "
        "pickles it finds there",
    ),
    "input": (("content",), "scikit-learn's text vectorizers then read the files the data names"),
}
"""Init arguments of library classes that reach files, caches or the network: the values a
definition may give them, and why others are refused. ``n_jobs`` is not here: it only decides
how many of the worker's cores a fit uses."""
LIGHTGBM = "lightgbm"
LIGHTGBM_FILES: Mapping[str, tuple[str, ...]] = {
    "data": ("train", "train_data", "train_data_file", "data_filename"),
    "valid": (
        "test",
        "valid_data",
        "valid_data_file",
        "test_data",
        "test_data_file",
        "valid_filenames",
    ),
    "input_model": ("model_input", "model_in"),
    "output_model": ("model_output", "model_out"),
    "output_result": (
        "predict_result",
        "prediction_result",
        "predict_name",
        "prediction_name",
        "pred_name",
        "name_pred",
    ),
    "save_binary": ("is_save_binary", "is_save_binary_file"),
    "convert_model": ("convert_model_file",),
    "forcedsplits_filename": (
        "fs",
        "forced_splits_filename",
        "forced_splits_file",
        "forced_splits",
    ),
    "forcedbins_filename": (),
    "parser_config_file": (),
    "config": ("config_file",),
    "machine_list_filename": ("machine_list_file", "machine_list", "mlist"),
}
"""LightGBM parameters that make it read or write a file (a model, data, a binary copy of the
data, predictions, forced splits or bins, a config), each with every alias LightGBM accepts
for it (its ``config.h``; a test holds this to the installed library's own alias table)."""
LIGHTGBM_RISKY: Mapping[str, tuple[tuple[Any, ...], str]] = {
    **dict.fromkeys(("machines", "workers", "nodes"), ((None,), _NETWORK)),
    **{
        name: (
            (None, False) if canonical == "save_binary" else (None,),
            f"LightGBM reads or writes the file it names ({canonical}); a step's data and "
            "assets go through its input, output and assets_identifier",
        )
        for canonical, aliases in LIGHTGBM_FILES.items()
        for name in (canonical, *aliases)
    },
}
"""What :data:`RISKY_INIT` is for LightGBM's classes, whose every init argument is a parameter of
the library (``LGBMClassifier(**kwargs)``)."""
LIGHTGBM_UNWRITTEN = frozenset({"class_weight", "importance_type", "n_estimators"})
"""Arguments LightGBM's scikit-learn classes use in Python, never write into the parameter text."""
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPLITTING = "=\"'"
"""Characters LightGBM's parameter text splits at or strips, besides whitespace."""
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


def init_problems(module: str, init: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(argument, why) for each init argument a library class in ``module`` may not be given.

    Only the DAGs folder's own classes take any argument: the caller leaves those out.
    """
    for name, value in init.items():
        problem = init_problem(module, name, value)
        if problem:
            yield name, problem


def init_problem(module: str, name: str, value: Any) -> str | None:
    """Why giving a library class in ``module`` init argument ``name`` this value is refused."""
    if not _NAME.fullmatch(name):
        return (
            f"init argument {name!r} is not a name: a library class takes keyword arguments of "
            "letters, digits and '_' (LightGBM would read the rest of such a name as more "
            "parameters)"
        )
    lightgbm = is_allowed(module, (LIGHTGBM,))
    risky = {**RISKY_INIT, **(LIGHTGBM_RISKY if lightgbm else {})}
    if name in risky and value not in risky[name][0]:
        allowed, why = risky[name]
        choices = " or ".join(_yaml(choice) for choice in allowed)
        return f"init argument {name!r} may only be {choices}: otherwise {why}"
    if lightgbm and name not in LIGHTGBM_UNWRITTEN:
        return _lightgbm_text_problem(name, value)
    return None


def _yaml(value: Any) -> str:
    """A value as a definition writes it."""
    return "null" if value is None else "false" if value is False else repr(value)


def _lightgbm_text_problem(name: str, value: Any) -> str | None:
    """Why ``value`` would not stay one value in LightGBM's ``key=value`` parameter text.

    LightGBM joins its parameters into one text (lists with ``,``) and splits it again at
    whitespace and ``=``, dropping quotes: ``"0.1 output_model=/tmp/x"`` would set a second
    parameter. A template is left to the run, which checks the value it renders.
    """
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if item is None or is_template(item):
            continue
        text = str(item)
        found = next((char for char in text if _injects(char)), None)
        if found is not None:
            return (
                f"LightGBM parameter {name!r} may not hold {_character(found)} ({text!r}): "
                "LightGBM reads its parameters from one 'key=value' text, where whitespace, "
                "'=', quotes and control characters would set other parameters; give a number, "
                "a word or a list of them"
            )
    return None


def _injects(char: str) -> bool:
    return char.isspace() or char in _SPLITTING or unicodedata.category(char).startswith("C")


def _character(char: str) -> str:
    if char in _SPLITTING:
        return "'='" if char == "=" else "a quote"
    kind = "whitespace" if char.isspace() else "a control character"
    return kind if char == " " else f"{kind} (U+{ord(char):04X})"


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
            checks.extend(
                (("init", key), why) for key, why in init_problems(params.package, params.init)
            )
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
