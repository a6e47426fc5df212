"""A run's trigger config may only set the parameters its model declares."""

from __future__ import annotations

import pytest

from model_steps.definition.schema import ModelSpec
from model_steps.errors import UnknownParameterError
from model_steps.runtime.run_config import check_run_config
from tests.definitions import definition

EXTRA = "parameters: {n_estimators: 100, max_depth: 3}\n"


def spec() -> ModelSpec:
    import yaml

    return ModelSpec.model_validate(yaml.safe_load(definition("forest", EXTRA)))


def test_a_config_with_declared_parameters_passes() -> None:
    check_run_config(spec(), {"n_estimators": 300})


def test_a_misspelt_parameter_fails_with_did_you_mean() -> None:
    with pytest.raises(UnknownParameterError) as refused:
        check_run_config(spec(), {"n_estimator": 300, "max_depth": 4})
    assert str(refused.value) == (
        "the run's config sets 'n_estimator' (did you mean 'n_estimators'?), which model "
        "'forest' does not declare; its parameters are: max_depth, n_estimators. Fix the "
        "trigger config, or declare the parameter under 'parameters' in the definition"
    )
    assert refused.value.suggestions == ("n_estimators",)


def test_a_hostile_config_gets_a_bounded_message() -> None:
    conf = {f"key_{i}_{'x' * 10_000}": i for i in range(1_000)}
    with pytest.raises(UnknownParameterError) as refused:
        check_run_config(spec(), conf)
    assert len(str(refused.value)) < 2_000
    assert "and 990 more" in str(refused.value)
    assert len(refused.value.unknown) == 1_000
