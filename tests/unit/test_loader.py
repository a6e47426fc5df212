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
    assert "model name 'churn' belongs to the definition in" in broken.problems[0].message
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


# -- what a definition may read of the deployment -------------------------------------------


SECRET = "s3cr3t-value-from-the-environment"


def test_a_variable_outside_the_allowed_ones_is_refused_whether_or_not_it_is_set(
    tmp_path: Path,
) -> None:
    extra = 'description: "${AIRFLOW_CONN_WAREHOUSE} ${JWT_SECRET:-x}"\n'
    path = write(tmp_path, "churn.yaml", definition("churn", extra))
    unset = load_and_validate([tmp_path], {}).problems
    set_ = load_and_validate(
        [tmp_path], {"AIRFLOW_CONN_WAREHOUSE": SECRET, "JWT_SECRET": SECRET}
    ).problems
    assert unset == set_
    assert [format_problem(p) for p in set_] == [
        f"{path}:13:1: description: environment variable AIRFLOW_CONN_WAREHOUSE may not be used "
        "in a definition: Airflow's connections, variables and configuration (AIRFLOW_CONN_*, "
        "AIRFLOW_VAR_*, AIRFLOW__*) hold secrets and are never interpolated"
    ]


def test_the_deployment_allows_more_variables_by_name_or_glob(tmp_path: Path) -> None:
    extra = 'description: "${TEAM_NAME} in ${REGION}"\n'
    write(tmp_path, "churn.yaml", definition("churn", extra))
    environ = {"TEAM_NAME": "fraud", "REGION": "eu", "MODEL_STEPS_ALLOWED_ENV": "TEAM_*, REGION"}
    (model,) = load_and_validate([tmp_path], environ).models
    assert model.spec.description == "fraud in eu"
    (broken,) = load_and_validate([tmp_path], {"TEAM_NAME": "fraud", "REGION": "eu"}).broken
    assert "MODEL_STEPS_ALLOWED_ENV ([model_steps] allowed_env)" in broken.problems[0].message


def test_no_setting_opens_airflows_own_secrets(tmp_path: Path) -> None:
    extra = 'description: "${AIRFLOW__API_AUTH__JWT_SECRET}"\n'
    write(tmp_path, "churn.yaml", definition("churn", extra))
    environ = {"AIRFLOW__API_AUTH__JWT_SECRET": SECRET, "MODEL_STEPS_ALLOWED_ENV": "*"}
    (broken,) = load_and_validate([tmp_path], environ).broken
    assert "never interpolated" in broken.problems[0].message


def test_an_error_names_the_reference_never_the_value_it_read(tmp_path: Path) -> None:
    extra = """\
    name: ${MODEL_STEPS_NAME}
    schedule: {train: "${MODEL_STEPS_SCHEDULE}/x"}
    assets: {directory: "${MODEL_STEPS_TEAM}/../x"}
    """
    write(tmp_path, "churn.yaml", definition("churn", extra).replace("name: churn\n", ""))
    environ = {
        "MODEL_STEPS_NAME": f"1 {SECRET}",
        "MODEL_STEPS_SCHEDULE": SECRET,
        "MODEL_STEPS_TEAM": f"team-{SECRET}",
    }
    (broken,) = load_and_validate([tmp_path], environ).broken
    texts = [format_problem(p) for p in broken.problems]
    assert len(texts) == 3
    assert all(SECRET not in text for text in texts)
    assert "'${MODEL_STEPS_TEAM}/../x' must stay inside the assets root" in "".join(texts)


def test_a_connection_outside_the_allowed_pattern_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "churn.yaml", definition("churn", "assets: {conn_id: aws_default}\n"))
    (broken,) = load_and_validate([tmp_path], {}).broken
    assert [format_problem(p) for p in broken.problems] == [
        f"{path}:13:10: assets.conn_id: connection 'aws_default' is not one definitions may "
        "use: the deployment allows connection ids matching 'model_steps_.*' "
        "(MODEL_STEPS_ALLOWED_CONNECTIONS or [model_steps] allowed_connections), so a "
        "definition cannot borrow the credentials of another connection"
    ]
    environ = {"MODEL_STEPS_ALLOWED_CONNECTIONS": "aws_default|ml_.*"}
    assert load_and_validate([tmp_path], environ).broken == ()


# -- one store per model ------------------------------------------------------------------------


def test_two_models_in_one_store_are_both_invalid_each_naming_the_other(tmp_path: Path) -> None:
    iris = write(tmp_path, "iris.yaml", definition("iris", "assets: {root: s3://ml/models}\n"))
    extra = "assets: {root: 's3://ml//models/', directory: iris}\n"
    intruder = write(tmp_path, "intruder.yaml", definition("intruder", extra))
    catalog = load_and_validate([tmp_path], {})
    assert catalog.models == ()
    problems = {b.path: b.problems for b in catalog.broken}
    (iris_problem,) = problems[iris]
    (intruder_problem,) = problems[intruder]
    assert (iris_problem.field, intruder_problem.field) == ("assets.root", "assets.directory")
    assert iris_problem.message.startswith(
        f"this model's store is also the store of model 'intruder' ({intruder})"
    )
    assert f"the store of model 'iris' ({iris})" in intruder_problem.message
    assert "s3://" not in iris_problem.message + intruder_problem.message


def test_a_store_inside_another_models_store_is_refused_too(tmp_path: Path) -> None:
    write(tmp_path, "iris.yaml", definition("iris"))
    extra = "assets: {directory: iris/versions}\n"
    write(tmp_path, "nested.yaml", definition("nested", extra))
    steps = definition("assets_elsewhere").replace(
        "    has_assets: true\n", "    has_assets: true\n    assets_root: /srv/big\n"
    )
    write(tmp_path, "assets_elsewhere.yaml", steps)
    write(tmp_path, "big.yaml", definition("big", "assets: {root: /srv/big/assets_elsewhere}\n"))
    catalog = load_and_validate([tmp_path], {}, assets_root="/srv/models")
    messages = {b.name: b.problems[0].message for b in catalog.broken}
    assert sorted(messages) == ["assets_elsewhere", "big", "iris", "nested"]
    assert catalog.models == ()
    assert messages["nested"].startswith("this model's store lies inside the store of model 'iris'")
    assert messages["iris"].startswith("the store of model 'nested'")


def test_a_model_naming_the_default_root_shares_it_with_models_that_leave_it_out(
    tmp_path: Path,
) -> None:
    write(tmp_path, "iris.yaml", definition("iris"))
    write(
        tmp_path,
        "other.yaml",
        definition("other", "assets: {root: /srv/models/, directory: iris}\n"),
    )
    assert load_and_validate([tmp_path], {}).broken == ()  # the default root is unknown here
    catalog = load_and_validate([tmp_path], {}, assets_root="/srv/models")
    assert sorted(b.name or "" for b in catalog.broken) == ["iris", "other"]
