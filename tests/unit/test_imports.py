"""The import allow-list: a model definition cannot name code outside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_steps.definition.allowlist import import_object, is_allowed, refused_references
from model_steps.definition.schema import ModelSpec
from model_steps.errors import ImportRefusedError, MissingAttributeError, MissingModuleError
from model_steps.settings import DEFAULT_ALLOWED, allowed_imports


def model(**parameters: Any) -> ModelSpec:
    step = {"id": "fit", "parameters": {"input": {"train": {"url": "t.csv"}}, **parameters}}
    return ModelSpec.model_validate(
        {"apiVersion": "model-steps/v1", "kind": "Model", "name": "m", "steps": [step]}
    )


def test_allowed_module_imports_its_class() -> None:
    from sklearn.linear_model import LogisticRegression

    found = import_object("sklearn.linear_model:LogisticRegression", DEFAULT_ALLOWED)
    assert found is LogisticRegression


def test_dotted_reference_names_the_attribute_last() -> None:
    from sklearn.preprocessing import StandardScaler

    assert import_object("sklearn.preprocessing.StandardScaler", DEFAULT_ALLOWED) is StandardScaler


@pytest.mark.parametrize("reference", ["os:system", "subprocess:run", "builtins:eval"])
def test_system_modules_are_refused_with_how_to_allow(reference: str) -> None:
    module = reference.split(":")[0]
    with pytest.raises(ImportRefusedError, match=f"module '{module}'.*MODEL_STEPS_ALLOWED_IMPORTS"):
        import_object(reference, DEFAULT_ALLOWED)


def test_prefix_matches_whole_module_names_only() -> None:
    assert is_allowed("sklearn.linear_model", DEFAULT_ALLOWED)
    assert not is_allowed("sklearn_evil", DEFAULT_ALLOWED)
    with pytest.raises(ImportRefusedError, match="sklearn_evil"):
        import_object("sklearn_evil.tools:run", DEFAULT_ALLOWED)


def test_private_attribute_is_refused() -> None:
    with pytest.raises(ImportRefusedError, match="'_config' is private"):
        import_object("sklearn:_config", DEFAULT_ALLOWED)


def test_object_reexported_from_a_refused_module_is_refused() -> None:
    with pytest.raises(ImportRefusedError, match="defined in 'typing'"):
        import_object("tests.step_code:Any", ("tests.step_code",))


def test_module_reexported_by_an_allowed_module_is_refused() -> None:
    with pytest.raises(ImportRefusedError, match="defined in 'json'"):
        import_object("tests.step_code:json", ("tests.step_code",))


def test_missing_module_gives_an_install_hint() -> None:
    with pytest.raises(MissingModuleError, match="pip install no_such_lib"):
        import_object("no_such_lib.models:Tree", ("no_such_lib",))


def test_missing_attribute_suggests_the_near_miss() -> None:
    with pytest.raises(MissingAttributeError, match="did you mean LogisticRegression"):
        import_object("sklearn.linear_model:LogisticRegresion", DEFAULT_ALLOWED)


def test_environment_extends_the_defaults() -> None:
    environ = {
        "MODEL_STEPS_ALLOWED_IMPORTS": "catboost, mylib.models",
        "AIRFLOW__MODEL_STEPS__ALLOWED_IMPORTS": "statsmodels",
    }
    allowed = allowed_imports(environ, None)
    assert allowed == (*DEFAULT_ALLOWED, "catboost", "mylib.models", "statsmodels")


def test_dags_folder_modules_are_allowed_but_not_the_loader(tmp_path: Path) -> None:
    (tmp_path / "model_code").mkdir()
    (tmp_path / "model_code" / "__init__.py").touch()
    (tmp_path / "no_init").mkdir()
    (tmp_path / "helpers.py").touch()
    (tmp_path / "model_steps_loader.py").touch()
    (tmp_path / "iris.yaml").touch()
    extra = allowed_imports({}, tmp_path)[len(DEFAULT_ALLOWED) :]
    assert extra == ("helpers", "model_code")


def test_refused_references_locates_each_refusal_without_importing() -> None:
    spec = model(
        callable="os:system",
        save="model_code.io:save",
        load="subprocess:run",
        metrics=["accuracy", "pickle:loads"],
    )
    refused = refused_references(spec, (*DEFAULT_ALLOWED, "model_code"))
    where = ("steps", 0, "parameters")
    assert [location for location, _ in refused] == [
        (*where, "callable"),
        (*where, "load"),
        (*where, "metrics", 1),
    ]
    assert "'os' is not an allowed import" in refused[0][1]


def test_refused_references_points_at_a_private_class() -> None:
    spec = model(package="sklearn.base", **{"class": "_Hidden"})
    assert [loc for loc, _ in refused_references(spec, DEFAULT_ALLOWED)] == [
        ("steps", 0, "parameters", "class")
    ]
