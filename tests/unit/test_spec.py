"""The schema's defaults and the rules a definition must follow."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from model_steps.definition.schema import ModelSpec, json_schema, parse_duration, schedule_kind


def model(**fields: Any) -> ModelSpec:
    step = {
        "id": "fit",
        "parameters": {
            "package": "sklearn.linear_model",
            "class": "Ridge",
            "input": {"train": {"url": "t.csv"}},
        },
    }
    base: dict[str, Any] = {
        "apiVersion": "model-steps/v1",
        "kind": "Model",
        "name": "churn",
        "steps": [step],
    }
    return ModelSpec.model_validate({**base, **fields})


def test_defaults_make_a_paused_manual_undeployed_model_without_inference() -> None:
    spec = model()
    assert spec.status == "undeployed"
    assert (spec.schedule.train, spec.schedule.infer, spec.schedule.status) == (
        None,
        None,
        "paused",
    )
    assert spec.has_infer is False
    assert spec.steps[0].has_assets is False
    assert spec.steps[0].title == "fit"


def test_assets_directory_defaults_to_the_model_name() -> None:
    assert model().directory == "churn"
    assert model(assets={"directory": "team/churn"}).directory == "team/churn"


def test_owner_comes_from_metadata() -> None:
    assert model().owner == "airflow"
    assert model(metadata={"owner": "risk-team"}).owner == "risk-team"


def test_a_whole_number_is_a_label_but_a_decimal_must_be_quoted() -> None:
    assert model(version=2).version == "2"
    with pytest.raises(ValidationError, match="quote it"):
        model(version=1.10)


def test_parameter_shorthand_is_the_default_value() -> None:
    spec = model(parameters={"threshold": 0.5, "classes": {"default": [1, 2], "type": "array"}})
    assert spec.parameters["threshold"].default == 0.5
    assert spec.parameters["classes"].rules() == {"type": "array"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_durations_read_the_way_people_write_them(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("0 3 * * 1", "cron"),
        ("@daily", "preset"),
        ("6h", "interval"),
        ("on new version", "on_new_version"),
    ],
)
def test_schedule_kinds(value: str, kind: str) -> None:
    assert schedule_kind(value) == kind


def test_a_cron_string_with_seconds_is_refused() -> None:
    with pytest.raises(ValidationError, match="5-field cron string"):
        model(schedule={"train": "0 0 3 * * 1"})


def test_definitions_are_immutable() -> None:
    with pytest.raises(ValidationError):
        model().name = "other"  # type: ignore[misc]


def test_every_field_of_the_json_schema_has_a_description() -> None:
    schema = json_schema()
    objects = [schema, *schema["$defs"].values()]
    undocumented = [
        f"{obj.get('title')}.{name}"
        for obj in objects
        for name, prop in obj.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []


def test_the_json_schema_forbids_unknown_keys_everywhere() -> None:
    schema = json_schema()
    objects = [schema, *schema["$defs"].values()]
    assert all(obj.get("additionalProperties") is False for obj in objects)
