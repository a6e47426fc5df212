"""Where a definition's tables may be: the deployment's allowed places, never code or stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model_steps.definition.data_locations import data_places, deployment_places
from model_steps.definition.loader import load_and_validate
from model_steps.definition.stores import real_path, resolving_once
from model_steps.settings import allowed_data, load_settings
from tests.definitions import definition

LAKE = {"MODEL_STEPS_ALLOWED_DATA": "s3://lake/, /srv/data"}
"""A deployment whose tables live in the ``lake`` bucket and under ``/srv/data``."""


def model(name: str, url: str, extra: str = "") -> str:
    return definition(name, extra).replace("s3://data/train.csv", f'"{url}"')


def test_the_setting_lists_prefixes_separated_by_commas_or_spaces() -> None:
    environ = {"MODEL_STEPS_ALLOWED_DATA": "s3://a/, /srv/b  gs://c", "MODEL_STEPS_DATA_ROOT": "/x"}
    assert allowed_data(environ) == ("s3://a/", "/srv/b", "gs://c")


def test_without_the_setting_the_data_root_is_the_one_allowed_place() -> None:
    assert allowed_data({"MODEL_STEPS_DATA_ROOT": "/srv/data"}) == ("/srv/data",)
    assert allowed_data({}) == ()


def test_airflow_cfg_sets_the_allowed_places(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text("[model_steps]\nallowed_data = s3://cfg/\n")
    settings = load_settings({"AIRFLOW_HOME": str(tmp_path)})
    assert allowed_data(settings.environ) == ("s3://cfg/",)


def test_a_prefix_matches_whole_path_segments_only() -> None:
    places = data_places(LAKE, [])
    assert places.refusal("/srv/data/x.csv") is None
    assert places.refusal("file:///srv/data/x.csv") is None
    assert places.refusal("/srv/data-other/x.csv") == "it is outside the allowed data locations"
    assert places.refusal("s3://lake-other/x.csv") == "it is outside the allowed data locations"


def test_a_local_prefix_is_resolved_through_symbolic_links(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    places = data_places({"MODEL_STEPS_ALLOWED_DATA": str(tmp_path / "link")}, [])
    assert places.refusal(str(tmp_path / "real" / "x.csv")) is None
    assert places.refusal(str(tmp_path / "link" / "x.csv")) is None


def test_within_one_load_each_path_resolves_as_realpath_does(tmp_path: Path) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "leaf").symlink_to(tmp_path / "real" / "sub")
    paths = [
        f"{tmp_path}/link/sub/x.csv",
        f"{tmp_path}/link/leaf",
        f"{tmp_path}/link/leaf/x.csv",
        f"{tmp_path}/real/../link/x.csv",
        f"{tmp_path}/real/./sub//x.csv",
        f"{tmp_path}/link/",
        f"{tmp_path}/missing/x.csv",
    ]
    with resolving_once():
        assert [real_path(p) for p in paths] == [os.path.realpath(p) for p in paths]


def test_outside_a_load_a_link_changed_since_the_last_call_is_followed(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a")
    assert real_path(f"{tmp_path}/link/x.csv") == f"{tmp_path.resolve()}/a/x.csv"
    (tmp_path / "link").unlink()
    (tmp_path / "link").symlink_to(tmp_path / "b")
    assert real_path(f"{tmp_path}/link/x.csv") == f"{tmp_path.resolve()}/b/x.csv"


def test_with_nothing_allowed_the_error_names_the_setting_to_set() -> None:
    places = data_places({}, [])
    assert places.refusal("/srv/data/x.csv") == "no data location is allowed in this deployment"
    assert "set MODEL_STEPS_ALLOWED_DATA ([model_steps] allowed_data)" in places.setting


def test_the_error_shows_the_settings_current_value() -> None:
    assert data_places(LAKE, []).setting == (
        "data is allowed only under MODEL_STEPS_ALLOWED_DATA ([model_steps] allowed_data): "
        "s3://lake/, /srv/data"
    )
    defaulted = data_places({"MODEL_STEPS_DATA_ROOT": "/srv/d"}, []).setting
    assert "not set, so data is allowed only under MODEL_STEPS_DATA_ROOT: /srv/d" in defaulted


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("memory://lake/x.csv", "its protocol memory:// is not one of"),
        ("https://lake/x.csv", "its protocol https:// is not one of"),
        ("file://srv/data/x.csv", "it is a relative path"),
        ("s3://lake/a/%2e%2e/b.csv", "it has a '..' segment"),
        ("zip://x.csv::s3://lake/a.zip", "it chains filesystems"),
    ],
)
def test_what_no_prefix_names_is_refused(url: str, reason: str) -> None:
    refusal = data_places(LAKE, []).refusal(url)
    assert refusal is not None and refusal.startswith(reason)


def test_a_memory_prefix_allows_the_memory_filesystem() -> None:
    places = data_places({"MODEL_STEPS_ALLOWED_DATA": "memory://"}, [])
    assert places.refusal("memory://x/y.csv") is None


def test_an_output_into_another_models_store_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "iris.yaml").write_text(model("iris", "/srv/data/iris.csv"))
    (tmp_path / "intruder.yaml").write_text(
        model("intruder", "/srv/data/x.csv").replace(
            "      input:",
            "      output: {train: {url: /srv/data/models/iris/current.csv}}\n      input:",
        )
    )
    environ = {"MODEL_STEPS_ALLOWED_DATA": "/srv/data"}
    catalog = load_and_validate(
        [tmp_path], environ, assets_root="/srv/data/models", check_data=True
    )
    assert [m.spec.name for m in catalog.models] == ["iris"]
    (problem,) = catalog.problems
    assert problem.field == "steps[0].parameters.output.train.url"
    assert "it is inside the store of model 'iris'" in problem.message


def test_a_template_whose_folder_holds_another_models_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "iris.yaml").write_text(
        model("iris", "s3://lake/iris.csv", "assets: {root: s3://lake/models}\n")
    )
    (tmp_path / "daily.yaml").write_text(model("daily", "s3://lake/{{ ds }}.csv"))
    catalog = load_and_validate([tmp_path], LAKE, assets_root="/srv/models", check_data=True)
    assert [m.spec.name for m in catalog.models] == ["iris"]
    (problem,) = catalog.problems
    assert "could steer it into the store of model 'iris'" in problem.message


def test_an_output_into_the_dags_folder_is_refused_even_under_an_allowed_prefix(
    tmp_path: Path,
) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "writer.yaml").write_text(model("writer", f"{dags}/train.csv"))
    environ = {"MODEL_STEPS_ALLOWED_DATA": str(tmp_path)}
    (problem,) = load_and_validate([dags], environ, check_data=True).problems
    assert "it is inside the DAGs folder, which data URLs may never reach" in problem.message


def test_a_store_that_holds_the_dags_folder_is_refused(tmp_path: Path) -> None:
    dags = tmp_path / "stores" / "planter"
    dags.mkdir(parents=True)
    (dags / "planter.yaml").write_text(
        model("planter", "/srv/data/x.csv", f"assets: {{root: {tmp_path}/stores}}\n")
    )
    (problem,) = load_and_validate([dags], LAKE, check_data=True).problems
    assert problem.field == "assets.root"
    assert "would lie in or hold the DAGs folder" in problem.message


def test_a_serving_process_loads_definitions_without_the_data_check(tmp_path: Path) -> None:
    (tmp_path / "iris.yaml").write_text(model("iris", "/srv/data/iris.csv"))
    assert len(load_and_validate([tmp_path], {}).models) == 1
    assert load_and_validate([tmp_path], {}, check_data=True).models == ()


def test_a_task_refuses_the_dags_folder_and_every_store_even_under_an_allowed_prefix(
    tmp_path: Path,
) -> None:
    (tmp_path / "iris.yaml").write_text(model("iris", "/srv/data/iris.csv"))
    (loaded,) = load_and_validate([tmp_path], {}).models
    environ = {
        "AIRFLOW_HOME": str(tmp_path),
        "MODEL_STEPS_ALLOWED_DATA": "/srv",
        "MODEL_STEPS_DAGS_FOLDER": "/srv/dags",
        "MODEL_STEPS_ASSETS_ROOT": "/srv/models",
    }
    places = deployment_places(loaded.spec, load_settings(environ))
    assert places.refusal("/srv/data/x.csv") is None
    for url, what in [
        ("/srv/dags/evil.py", "the DAGs folder"),
        ("/srv/models/other/current.json", "the deployment's assets root"),
    ]:
        refusal = places.refusal(url)
        assert refusal is not None and what in refusal


def test_a_task_from_a_dag_bundle_refuses_the_bundle_and_the_dags_folder(tmp_path: Path) -> None:
    (tmp_path / "iris.yaml").write_text(model("iris", "/srv/data/iris.csv"))
    (loaded,) = load_and_validate([tmp_path], {}).models
    environ = {
        "AIRFLOW_HOME": str(tmp_path),
        "MODEL_STEPS_ALLOWED_DATA": "/srv",
        "MODEL_STEPS_DAGS_FOLDER": "/srv/dags",
    }
    settings = load_settings(environ).in_bundle(Path("/srv/bundles/models"))
    places = deployment_places(loaded.spec, settings)
    assert places.refusal("/srv/data/x.csv") is None
    for url in ("/srv/bundles/models/evil.py", "/srv/dags/evil.py"):
        refusal = places.refusal(url)
        assert refusal is not None and "the DAGs folder" in refusal
