"""Loading folders of definitions: discovery, interpolation, isolation and unique names."""

from __future__ import annotations

import copy
from pathlib import Path

from model_steps.definition.loader import load_and_validate
from model_steps.errors import format_problem
from tests.definitions import definition


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_other_yaml_files_in_the_folder_are_left_alone(tmp_path: Path) -> None:
    write(tmp_path, "churn.yaml", definition("churn"))
    write(tmp_path, "config/settings.yaml", "kind: Deployment\nreplicas: 3\n")
    write(tmp_path, "docker-compose.yml", "services: {web: {image: nginx}}\n")
    catalog = load_and_validate([tmp_path], {})
    assert [m.spec.name for m in catalog.models] == ["churn"]
    assert catalog.broken == ()


def test_models_are_found_in_nested_folders_but_not_hidden_ones(tmp_path: Path) -> None:
    write(tmp_path, "team_a/churn.yml", definition("churn"))
    write(tmp_path, ".git/copy.yaml", definition("copy"))
    assert [m.spec.name for m in load_and_validate([tmp_path], {}).models] == ["churn"]


def test_a_broken_file_does_not_hide_the_valid_ones(tmp_path: Path) -> None:
    write(tmp_path, "churn.yaml", definition("churn"))
    write(tmp_path, "broken.yaml", definition("broken").replace("class:", "klass:"))
    catalog = load_and_validate([tmp_path], {})
    assert [m.spec.name for m in catalog.models] == ["churn"]
    assert [b.name for b in catalog.broken] == ["broken"]


def test_environment_variables_are_substituted_with_defaults_and_escapes(tmp_path: Path) -> None:
    extra = """\
    assets:
      root: ${MODEL_STEPS_ROOT}/models
      directory: ${MODEL_STEPS_TEAM:-shared}/churn
    description: costs $${PRICE}
    """
    write(tmp_path, "churn.yaml", definition("churn", extra))
    (model,) = load_and_validate([tmp_path], {"MODEL_STEPS_ROOT": "s3://ml"}).models
    assert model.spec.assets.root == "s3://ml/models"
    assert model.spec.assets.directory == "shared/churn"
    assert model.spec.description == "costs ${PRICE}"


def test_a_missing_environment_variable_is_an_error_at_its_line(tmp_path: Path) -> None:
    extra = "assets:\n  root: ${MODEL_STEPS_BUCKET}/m\n"
    path = write(tmp_path, "churn.yaml", definition("churn", extra))
    (broken,) = load_and_validate([tmp_path], {}).broken
    assert [format_problem(p) for p in broken.problems] == [
        f"{path}:14:3: assets.root: environment variable MODEL_STEPS_BUCKET is not set; "
        "set it or give a default with ${MODEL_STEPS_BUCKET:-default}"
    ]


def test_every_problem_in_a_file_is_reported_in_line_order(tmp_path: Path) -> None:
    text = definition("churn", "status: live\nschedule: {train: every day}\n")
    write(tmp_path, "churn.yaml", text.replace("class:", "klass:"))
    (broken,) = load_and_validate([tmp_path], {}).broken
    assert [(p.line, p.field) for p in broken.problems] == [
        (10, "steps[0].parameters.klass"),
        (13, "status"),
        (14, "schedule.train"),
    ]


def test_a_copied_file_with_the_same_name_loses_to_the_file_named_after_the_model(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a_copy.yaml", definition("churn"))
    write(tmp_path, "churn.yaml", definition("churn"))
    catalog = load_and_validate([tmp_path], {})
    assert [m.path.name for m in catalog.models] == ["churn.yaml"]
    (broken,) = catalog.broken
    assert broken.path.name == "a_copy.yaml"
    assert "model name 'churn' is already defined in" in broken.problems[0].message
    assert broken.problems[0].line == 3


def test_loading_one_model_reads_the_file_named_after_it_and_agrees_with_a_full_load(
    tmp_path: Path,
) -> None:
    write(tmp_path, "a_copy.yaml", definition("churn"))
    write(tmp_path, "churn.yaml", definition("churn"))
    write(tmp_path, "zz_broken.yaml", "apiVersion: model-steps/v1\nkind: [")
    fast = load_and_validate([tmp_path], {}, only="churn")
    assert [m.path.name for m in fast.models] == ["churn.yaml"]
    assert fast.broken == ()


def test_loading_one_model_falls_back_to_reading_all_files(tmp_path: Path) -> None:
    write(tmp_path, "models.yaml", definition("churn"))
    assert [m.spec.name for m in load_and_validate([tmp_path], {}, only="churn").models] == [
        "churn"
    ]


def test_an_unreadable_path_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (broken,) = load_and_validate([tmp_path / "missing.yaml"], {}).broken
    assert broken.problems[0].code == "unreadable"


def test_loaded_definitions_hold_plain_data_that_survives_copying(tmp_path: Path) -> None:
    text = definition("churn").replace(
        "      package: sklearn.linear_model",
        "      init: {pairs: [[bmi, bp]], options: {a: [1]}}\n      package: sklearn.linear_model",
    )
    write(tmp_path, "churn.yaml", text)
    (model,) = load_and_validate([tmp_path], {}).models
    init = model.spec.steps[0].parameters.init
    assert copy.deepcopy(init) == {"pairs": [["bmi", "bp"]], "options": {"a": [1]}}
    assert type(init["pairs"]) is list
    assert type(init["options"]) is dict


def test_yaml_anchors_and_merge_keys_are_understood(tmp_path: Path) -> None:
    text = (
        definition("churn").replace(
            "      input:",
            "      init: &shared {fit_intercept: true}\n      input:",
        )
        + "metadata:\n  defaults: *shared\n  merged:\n    <<: *shared\n    owner: risk\n"
    )
    write(tmp_path, "churn.yaml", text)
    (model,) = load_and_validate([tmp_path], {}).models
    assert model.spec.metadata["merged"] == {"fit_intercept": True, "owner": "risk"}


def test_a_definition_read_the_slow_way_still_holds_plain_data(tmp_path: Path) -> None:
    text = (
        definition("churn").replace(
            "      input:", "      init: &shared {pairs: [[a, b]]}\n      input:"
        )
        + "metadata:\n  merged:\n    <<: *shared\n"
    )
    write(tmp_path, "churn.yaml", text)
    (model,) = load_and_validate([tmp_path], {}).models
    assert type(model.spec.steps[0].parameters.init["pairs"]) is list
    assert copy.deepcopy(model.spec.metadata) == {"merged": {"pairs": [["a", "b"]]}}
