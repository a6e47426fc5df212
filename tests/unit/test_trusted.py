"""Rebuilding a validated definition from the parse cache: the same spec, without the rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from model_steps.definition.loader import LoadedModel, load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.definition.trusted import rebuilding
from tests.conftest import DATA
from tests.definitions import definition
from tests.unit.test_corpus import ALLOW, ENVIRON

VALID = sorted((DATA / "specs" / "valid").glob("*.yaml"))
BREAKS_A_RULE = {  # has_assets without the asset's file name: a model validator's rule
    "apiVersion": "model-steps/v1",
    "kind": "Model",
    "name": "churn",
    "steps": [
        {
            "id": "fit",
            "has_assets": True,
            "parameters": {
                "package": "sklearn.linear_model",
                "class": "LinearRegression",
                "input": {"train": {"url": "s3://data/train.csv"}},
            },
        }
    ],
}


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_a_rebuilt_definition_is_the_validated_one(path: Path) -> None:
    catalog = load_and_validate([path], ENVIRON, allowed=ALLOW)
    (model,) = catalog.models
    assert isinstance(model, LoadedModel)
    with rebuilding():
        rebuilt = ModelSpec.model_validate_json(model.spec.model_dump_json(by_alias=True))
    assert rebuilt == model.spec


def test_a_rebuild_skips_the_rules_the_definition_already_passed() -> None:
    with pytest.raises(ValidationError, match="assets_identifier"):
        ModelSpec.model_validate(BREAKS_A_RULE)
    with rebuilding():
        assert ModelSpec.model_validate(BREAKS_A_RULE).steps[0].has_assets is True


def test_a_rebuild_still_checks_types_and_unknown_fields() -> None:
    with rebuilding(), pytest.raises(ValidationError):
        ModelSpec.model_validate({**BREAKS_A_RULE, "steps": "not a list"})
    with rebuilding(), pytest.raises(ValidationError, match="Extra inputs"):
        ModelSpec.model_validate({**BREAKS_A_RULE, "unknown": 1})


def test_the_rules_apply_again_after_a_rebuild_even_one_that_failed() -> None:
    with pytest.raises(ValidationError), rebuilding():
        ModelSpec.model_validate({**BREAKS_A_RULE, "steps": "not a list"})
    with pytest.raises(ValidationError, match="assets_identifier"):
        ModelSpec.model_validate(BREAKS_A_RULE)


def test_validating_a_file_never_skips_a_rule(tmp_path: Path) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text(definition("churn").replace("    assets_identifier: model.joblib\n", ""))
    (broken,) = load_and_validate([path], {}).broken
    assert [p.code for p in broken.problems] == ["assets_identifier"]
