"""The import allow-list: a definition names only what its role allows, and what it names resolves
to an object of the right kind, defined where the allow-list says.

The security corpus (tests/data/specs/invalid/security/) holds the attacks as data; these tests
pin the rules one at a time.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from model_steps.definition.allowlist import refused_references
from model_steps.definition.schema import ModelSpec
from model_steps.errors import ImportRefusedError, MissingAttributeError, MissingModuleError
from model_steps.runtime.resolution import public_module, resolve_class, resolve_function
from model_steps.settings import DEFAULT_ALLOWED, AllowList, allow_list
from tests.conftest import DATA

CODE = DATA / "specs" / "code"
ALLOW = allow_list({}, [CODE])
"""A DAGs folder holding ``corpus_code`` and modules named like ``joblib`` and ``logging``."""


def refusals(**parameters: Any) -> dict[str, str]:
    """What the loader refuses in a one-step model, by field path below the step's parameters."""
    runs = {"package": "sklearn.linear_model", "class": "Ridge"}
    if "callable" in parameters or "package" in parameters:
        runs = {}
    params = {**runs, "input": {"train": {"url": "t.csv"}}, **parameters}
    step = {"id": "fit", "parameters": params}
    spec = ModelSpec.model_validate(
        {"apiVersion": "model-steps/v1", "kind": "Model", "name": "m", "steps": [step]}
    )
    return {".".join(map(str, loc[3:])): text for loc, text in refused_references(spec, ALLOW)}


def test_a_class_comes_from_an_estimator_package_or_the_dags_folder() -> None:
    assert refusals(package="sklearn.linear_model", **{"class": "Ridge"}) == {}
    assert refusals(package="corpus_code.features", **{"class": "Anything"}) == {}
    assert refusals(package="xgboost", **{"class": "XGBClassifier"}) == {}


@pytest.mark.parametrize("package", ["pandas", "numpy", "scipy.io", "os", "sklearn_evil"])
def test_other_packages_hold_no_class_a_step_may_name(package: str) -> None:
    refused = refusals(package=package, **{"class": "eval"})
    assert refused["package"].startswith(f"module {package!r} is not an allowed import")
    assert "MODEL_STEPS_ALLOWED_IMPORTS" in refused["package"]


@pytest.mark.parametrize(
    "reference", ["pandas.io.pickle:read_pickle", "numpy:load", "sklearn.datasets:fetch_openml"]
)
def test_a_callable_must_come_from_the_dags_folder(reference: str) -> None:
    refused = refusals(callable=reference)
    assert refused["callable"] == (
        f"{reference} is not an allowed function: a callable step must be a function in the "
        "DAGs folder's own modules (corpus_code, joblib), or be listed in "
        "MODEL_STEPS_ALLOWED_FUNCTIONS"
    )


def test_a_listed_function_may_be_named_and_is_resolved_as_listed() -> None:
    allow = AllowList(functions=("numpy:log1p",))
    assert resolve_function("numpy:log1p", "callable", allow).__name__ == "log1p"
    with pytest.raises(ImportRefusedError, match="not an allowed function"):
        resolve_function("numpy:expm1", "callable", allow)


def test_a_metric_function_may_come_from_sklearn_metrics_only_among_libraries() -> None:
    assert refusals(metrics=["sklearn.metrics:fbeta_score", "corpus_code.metrics:x"]) == {}
    assert "metrics.0" in refusals(metrics=["pandas:eval"])


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"package": "sklearn.utils._testing", "class": "MinimalClassifier"}, "package"),
        ({"package": "sklearn.base", "class": "_Hidden"}, "class"),
        ({"callable": "corpus_code._private:run"}, "callable"),
        ({"metrics": ["sklearn.metrics._scorer:get_scorer"]}, "metrics.0"),
    ],
)
def test_private_names_are_refused(parameters: dict[str, Any], field: str) -> None:
    assert "is private (starts with '_')" in refusals(**parameters)[field]


@pytest.mark.parametrize("method", ["_fit", "__reduce__", "__class__"])
def test_private_and_dunder_methods_are_refused_by_name(method: str) -> None:
    refused = refusals(
        package="corpus_code.features", methods={"predict": method}, **{"class": "Any"}
    )
    assert refused == {
        "methods.predict": f"method {method!r} is private (starts with '_'): only public "
        "methods may be called"
    }


def test_a_library_class_is_called_through_its_estimator_methods_only() -> None:
    refused = refusals(package="xgboost", methods={"fit": "load_model"}, **{"class": "XGBModel"})
    assert refused["methods.fit"].startswith("method 'load_model' is not an estimator method")
    own = refusals(package="corpus_code.features", methods={"fit": "load"}, **{"class": "A"})
    assert own == {}


@pytest.mark.parametrize(
    ("init", "field"),
    [
        ({"memory": "/tmp/cache"}, "init.memory"),
        ({"memory": "{{ params.cache }}"}, "init.memory"),
        ({"input": "filename"}, "init.input"),
    ],
)
def test_init_values_that_reach_files_or_caches_are_refused(
    init: dict[str, Any], field: str
) -> None:
    refused = refusals(package="sklearn.cluster", init=init, **{"class": "FeatureAgglomeration"})
    assert list(refused) == [field]


def test_lightgbm_init_values_that_reach_peers_are_refused() -> None:
    refused = refusals(package="lightgbm", init={"machines": "10.0.0.1:12400"}, **{"class": "X"})
    assert list(refused) == ["init.machines"]


def test_ordinary_init_values_and_n_jobs_pass() -> None:
    init = {"memory": None, "input": "content", "n_jobs": -1, "func": "eval"}
    assert refusals(package="sklearn.cluster", init=init, **{"class": "KMeans"}) == {}


def test_a_dags_folder_module_named_like_a_standard_one_is_refused_by_name() -> None:
    assert refusals(callable="logging:getLogger")["callable"].startswith(
        "'logging' is a standard-library module: a module of that name in the DAGs folder "
        "does not replace it"
    )


def test_library_test_code_is_refused() -> None:
    refused = refusals(package="sklearn.utils.tests.test_x", **{"class": "A"})
    assert refused["package"].endswith("is test code ('tests'), not code a model may run")


def test_the_environment_extends_packages_and_functions() -> None:
    environ = {
        "MODEL_STEPS_ALLOWED_IMPORTS": "catboost, mylib.models",
        "AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS": "statsmodels",
        "MODEL_STEPS_ALLOWED_FUNCTIONS": "numpy:log1p, mylib.features:clean",
    }
    allow = allow_list(environ, [])
    assert allow.packages == (*DEFAULT_ALLOWED, "catboost", "mylib.models", "statsmodels")
    assert allow.functions == ("numpy:log1p", "mylib.features:clean")


def test_dags_folder_modules_are_listed_but_not_the_loader(tmp_path: Path) -> None:
    (tmp_path / "model_code").mkdir()
    (tmp_path / "model_code" / "__init__.py").touch()
    (tmp_path / "no_init").mkdir()
    (tmp_path / "helpers.py").touch()
    (tmp_path / "model_steps_loader.py").touch()
    (tmp_path / "iris.yaml").touch()
    allow = allow_list({}, [tmp_path])
    assert allow.code_modules == ("helpers", "model_code")
    assert allow.code_folders == (tmp_path.resolve(),)


def test_a_class_resolves_once_it_has_the_steps_methods() -> None:
    from sklearn.linear_model import LogisticRegression

    found = resolve_class("sklearn.linear_model", "LogisticRegression", ("fit", "predict"), ALLOW)
    assert found is LogisticRegression


def test_a_class_without_a_method_the_step_calls_names_the_near_miss() -> None:
    with pytest.raises(MissingAttributeError) as caught:
        resolve_class("sklearn.linear_model", "LogisticRegression", ("predict_probas",), ALLOW)
    assert caught.value.reason == "LogisticRegression has no method 'predict_probas'"
    assert caught.value.suggestions[0] == "predict_proba"


def test_a_misspelt_class_names_the_near_miss() -> None:
    with pytest.raises(MissingAttributeError, match="did you mean 'LogisticRegression'"):
        resolve_class("sklearn.linear_model", "LogisticRegresion", (), ALLOW)


@pytest.mark.parametrize(
    ("package", "name", "what"),
    [
        ("sklearn.datasets", "fetch_openml", "is a function, not a class"),
        ("sklearn.utils.estimator_checks", "pickle", "is a module, not a class"),
        ("sklearn.utils.discovery", "Path", "is defined in 'pathlib'"),
    ],
)
def test_a_name_in_an_allowed_package_must_be_a_class_defined_there(
    package: str, name: str, what: str
) -> None:
    with pytest.raises(ImportRefusedError, match=what):
        resolve_class(package, name, (), ALLOW)


def test_a_dags_folder_function_resolves() -> None:
    function = resolve_function("corpus_code.features:add_interactions", "callable", ALLOW)
    assert function.__name__ == "add_interactions"


@pytest.mark.parametrize(
    ("reference", "what"),
    [
        ("corpus_code.reexports:read_pickle", "is defined in 'pandas', outside the DAGs folder"),
        ("corpus_code.reexports:system", "is a built-in function, not a Python function"),
        ("joblib:load", "Python imports the installed module 'joblib', not the DAGs folder's"),
    ],
)
def test_code_that_only_passes_through_a_dags_folder_name_is_refused(
    reference: str, what: str
) -> None:
    with pytest.raises(ImportRefusedError, match=what):
        resolve_function(reference, "callable", ALLOW)


def test_a_class_imported_into_a_dags_folder_module_is_refused() -> None:
    with pytest.raises(ImportRefusedError, match="is defined in 'subprocess'"):
        resolve_class("corpus_code.reexports", "Popen", (), ALLOW)


def test_a_metric_function_must_be_defined_in_sklearn_metrics() -> None:
    assert resolve_function("sklearn.metrics:log_loss", "metric", ALLOW).__name__ == "log_loss"
    with pytest.raises(ImportRefusedError, match="not an allowed function"):
        resolve_function("sklearn.datasets:fetch_openml", "metric", ALLOW)


def test_a_missing_library_gives_an_install_hint() -> None:
    allow = AllowList(packages=("no_such_lib",))
    with pytest.raises(MissingModuleError, match="pip install no_such_lib"):
        resolve_class("no_such_lib.models", "Tree", (), allow)


def test_a_misspelt_module_names_its_package_s_near_misses() -> None:
    with pytest.raises(MissingModuleError, match=r"did you mean 'sklearn\.linear_model'"):
        resolve_class("sklearn.linear_modle", "Ridge", (), ALLOW)


def test_a_refusal_names_the_public_module_not_the_private_one_defining_the_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python 3.13's shape: pathlib.Path is defined in pathlib._local and exposed by pathlib.
    public = types.ModuleType("stdlike")
    private = types.ModuleType("stdlike._local")
    shaped = type("Path", (), {"__module__": "stdlike._local"})
    public.Path = shaped  # type: ignore[attr-defined]
    private.Path = shaped  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stdlike", public)
    monkeypatch.setitem(sys.modules, "stdlike._local", private)
    monkeypatch.setattr("sklearn.utils.discovery.Path", shaped)

    with pytest.raises(ImportRefusedError, match="is defined in 'stdlike', which is not"):
        resolve_class("sklearn.utils.discovery", "Path", (), ALLOW)


def test_the_public_module_keeps_a_private_part_its_parent_does_not_expose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sklearn.linear_model import LogisticRegression

    hidden = type("Hidden", (), {"__module__": "stdlike._impl"})
    monkeypatch.setitem(sys.modules, "stdlike", types.ModuleType("stdlike"))

    assert public_module(LogisticRegression) == "sklearn.linear_model"
    assert public_module(hidden) == "stdlike._impl"
