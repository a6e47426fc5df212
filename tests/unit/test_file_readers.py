"""A step's class is a model: classes that open files or connections are refused by what they are.

The scan walks every public class of the allowed packages and reads its constructor: a class
taking an argument named like a file, a path, a URL or a connection must be refused, or that
argument's values judged (scikit-learn's ``memory``), or the name reviewed below as harmless.
A library release that adds another file reader fails here until it is classified.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType

import pytest

from model_steps.definition.allowlist import LIGHTGBM_RISKY, RISKY_INIT
from model_steps.errors import ImportRefusedError
from model_steps.runtime.file_readers import FILE_READING_CLASSES, file_reading_problem
from model_steps.runtime.resolution import resolve_class
from model_steps.settings import DEFAULT_ALLOWED, allow_list

SUSPECT = re.compile(
    r".*(file|path|fname|dir|url|uri|model_str|cache|memory|host|port|socket|conn|database"
    r"|input|output|buffer|stream|load|save|machine|checkpoint).*",
    re.IGNORECASE,
)
"""Broader than the rule the plugin applies: every name a reviewer should look at."""
REVIEWED = {
    "cache_size": "SVM kernel cache, in megabytes of memory",
    "cache_host_ratio": "share of an external-memory cache kept in host memory",
    "min_cache_page_bytes": "page size of an external-memory cache",
    "on_host": "where an external-memory cache lives, host or device",
    "input_type": "FeatureHasher's kind of input (dict, pair, string)",
    "input_tags": "scikit-learn's estimator tags",
    "sparse_output": "whether the output is a sparse matrix",
    "dense_output": "whether the output is a dense matrix",
    "output_distribution": "QuantileTransformer's target distribution",
    "output_margin": "xgboost's raw margin in a callback",
    "multi_output": "scikit-learn's target tags",
    "single_output": "scikit-learn's target tags",
    "importance_type": "which feature importance a booster reports",
    "importance_getter": "attribute name read from the fitted estimator",
    "transform_input": "Pipeline's metadata-routing parameter names",
    "connectivity": "an array (or a callable, which YAML cannot give)",
    "fit_path": "whether Lars keeps its regularisation path in memory",
    "path_method": "Isomap's shortest-path algorithm",
    "save_best": "EarlyStopping keeps the best iteration in memory",
    "temporary_buffers": "xgboost's in-memory conversion buffers",
    "min_impurity_decrease": "a tree's split threshold ('impurity' holds 'pur')",
    "support_fraction": "a robust covariance's share of points",
    "direction": "SequentialFeatureSelector's forward or backward",
    "array_api_support": "scikit-learn's estimator tags",
}
"""Constructor arguments that match :data:`SUSPECT` but reach no file, path or connection."""
JUDGED_BY_VALUE = set(RISKY_INIT) | set(LIGHTGBM_RISKY)
"""Arguments of useful estimators whose values are checked instead (``memory: null``)."""


def _modules(name: str) -> Iterator[ModuleType]:
    """``name`` and its public submodules, skipping test code and what fails to import."""
    try:
        module = importlib.import_module(name)
    except BaseException:  # an optional dependency missing (dask, pyspark): nothing to scan
        return
    yield module
    for info in pkgutil.iter_modules(getattr(module, "__path__", None) or []):
        if (info.name.startswith("_") and info.name != "_loss") or "test" in info.name:
            continue
        yield from _modules(f"{name}.{info.name}")


def _library_classes() -> list[type]:
    found: dict[type, None] = {}
    for top in DEFAULT_ALLOWED:
        for module in _modules(top):
            for attribute, value in vars(module).items():
                if attribute.startswith("_") or not inspect.isclass(value):
                    continue
                if (value.__module__ or "").split(".")[0] == top:
                    found.setdefault(value)
    return list(found)


def _arguments(cls: type) -> list[str]:
    try:
        return list(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return []


def test_every_class_of_the_allowed_packages_taking_a_file_like_argument_is_classified() -> None:
    classes = _library_classes()
    assert len(classes) > 300  # the scan reached scikit-learn, xgboost and lightgbm
    unclassified = {
        f"{cls.__module__}.{cls.__qualname__}": suspects
        for cls in classes
        if file_reading_problem(cls) is None
        and (
            suspects := [
                a
                for a in _arguments(cls)
                if SUSPECT.fullmatch(a) and a not in REVIEWED and a not in JUDGED_BY_VALUE
            ]
        )
    }
    assert unclassified == {}


def test_every_known_file_reading_class_is_installed_under_its_name() -> None:
    for reference in FILE_READING_CLASSES:
        module, _, name = reference.partition(":")
        assert inspect.isclass(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize(
    ("package", "name"),
    [
        ("lightgbm", "Booster"),
        ("lightgbm", "Dataset"),
        ("lightgbm", "CVBooster"),
        ("xgboost", "Booster"),
        ("xgboost", "DMatrix"),
        ("xgboost", "QuantileDMatrix"),
        ("xgboost.tracker", "RabitTracker"),
        ("xgboost.callback", "TrainingCheckPoint"),
    ],
)
def test_a_file_or_connection_reader_is_refused_as_a_steps_class(package: str, name: str) -> None:
    with pytest.raises(ImportRefusedError, match=r"opens files or connections|takes '"):
        resolve_class(package, name, (), allow_list({}, []))


@pytest.mark.parametrize(
    ("package", "name"),
    [
        ("sklearn.linear_model", "LogisticRegression"),
        ("sklearn.pipeline", "Pipeline"),
        ("xgboost", "XGBClassifier"),
        ("lightgbm", "LGBMRegressor"),
    ],
)
def test_estimators_are_still_allowed(package: str, name: str) -> None:
    assert inspect.isclass(resolve_class(package, name, ("fit",), allow_list({}, [])))


def test_a_subclass_of_a_file_reader_is_refused_by_what_it_is() -> None:
    import lightgbm

    class Renamed(lightgbm.Booster):  # a library subclass under another name, as a re-export
        pass

    problem = file_reading_problem(Renamed)
    assert problem is not None
    assert "derives from lightgbm.basic:Booster, which opens files" in problem


def test_a_class_taking_a_path_is_refused_whatever_its_package() -> None:
    class Loader:
        def __init__(self, alpha: float = 1.0, weights_path: str = "") -> None:
            pass

    problem = file_reading_problem(Loader)
    assert problem is not None and "takes 'weights_path'" in problem


def test_a_deployment_refuses_its_own_list_of_classes_with_their_subclasses() -> None:
    allow = allow_list({"MODEL_STEPS_REFUSED_CLASSES": "sklearn.linear_model:LinearRegression"}, [])
    with pytest.raises(ImportRefusedError, match="LinearRegression opens files or connections"):
        resolve_class("sklearn.linear_model", "LinearRegression", ("fit",), allow)
    assert inspect.isclass(resolve_class("sklearn.linear_model", "Ridge", ("fit",), allow))
