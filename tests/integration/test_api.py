"""The Models API inside the real Airflow API server, with real tokens, DB and stores.

The model these tests train, roll back, pause and resume is ``api_iris``
(tests/data/dagbag/api/), so the examples' versions and schedules stay as the other test
modules of the session expect them.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import s3 as s3_helpers
from tests.conftest import EXAMPLES, SESSION_DAGS

pytestmark = pytest.mark.integration

PREFIX = "/model-steps"
MODEL = "api_iris"
OUTAGE_CONN = "model_steps_outage"
OUTAGE_BUCKET = "model-steps-outage"
ENDPOINTS = [
    ("GET", "/models"),
    ("GET", f"/models/{MODEL}"),
    ("GET", f"/models/{MODEL}/versions"),
    ("GET", f"/models/{MODEL}/versions/1"),
    ("POST", f"/models/{MODEL}/rollback"),
    ("POST", f"/models/{MODEL}/pause"),
    ("POST", f"/models/{MODEL}/resume"),
    ("GET", "/"),
    ("GET", "/icon.svg"),
    ("GET", "/ui/"),
    ("GET", "/ui/app.js"),
    ("GET", "/openapi.json"),
]
CHANGES = [
    ("POST", f"/models/{MODEL}/rollback", {"version": 1}),
    ("POST", f"/models/{MODEL}/pause", {}),
    ("POST", f"/models/{MODEL}/resume", {}),
]


@pytest.fixture(scope="module")
def trained(run_dag: Any, example_data: Path) -> list[str]:
    """``api_iris`` trained twice: two versions, the second one live."""
    return [run_dag(f"{MODEL}__train").state for _ in range(2)]


def models(client: httpx.Client) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/models")
    assert response.status_code == 200, response.text
    listing: dict[str, Any] = response.json()
    return listing


def summary(client: httpx.Client, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in models(client)["models"] if m["name"] == name)
    return found


def dag_paused(client: httpx.Client, dag_id: str) -> bool:
    response = client.get(f"/api/v2/dags/{dag_id}")
    assert response.status_code == 200, response.text
    paused: bool = response.json()["is_paused"]
    return paused


def pointer_version(name: str) -> int:
    pointer = Path(os.environ["MODEL_STEPS_ASSETS_ROOT"], name, "current.json")
    version: int = json.loads(pointer.read_text())["version"]
    return version


def set_outage_connection(client: httpx.Client, endpoint: str) -> None:
    """Store the outage model's connection in Airflow's DB, pointing S3 calls at ``endpoint``."""
    client.delete(f"/api/v2/connections/{OUTAGE_CONN}")
    body = {
        "connection_id": OUTAGE_CONN,
        "conn_type": "generic",  # its extra is taken as fsspec options as they are
        "extra": json.dumps(s3_helpers.storage_options(endpoint)),
    }
    response = client.post("/api/v2/connections", json=body)
    assert response.status_code == 201, response.text


# -- authentication and permissions ---------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_a_request_without_credentials(
    anonymous: httpx.Client, method: str, path: str
) -> None:
    response = anonymous.request(method, PREFIX + path)
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_a_browser_without_a_session_is_sent_to_airflows_login_and_back(
    anonymous: httpx.Client,
) -> None:
    response = anonymous.get(f"{PREFIX}/ui/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 307
    location = httpx.URL(response.headers["location"])
    assert location.path.endswith("/auth/login")
    assert location.params["next"] == "/plugin/models"


def test_an_anonymous_malformed_body_is_refused_before_it_is_read(
    anonymous: httpx.Client,
) -> None:
    response = anonymous.post(
        f"{PREFIX}/models/{MODEL}/rollback",
        content=b"{version: 1",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}


def test_a_forged_token_is_refused(anonymous: httpx.Client) -> None:
    response = anonymous.get(f"{PREFIX}/models", headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid JWT token"}


def test_airflow_ui_session_cookie_authenticates(airflow_api: Any) -> None:
    cookies = {"_token": airflow_api.token("viewer")}
    with httpx.Client(base_url=airflow_api.base_url, cookies=cookies) as browser:
        response = browser.get(f"{PREFIX}/models")
    assert response.status_code == 200
    assert MODEL in [m["name"] for m in response.json()["models"]]


@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
def test_a_viewer_may_not_change_a_model(
    viewer: httpx.Client, admin: httpx.Client, method: str, path: str, body: Any
) -> None:
    before = summary(admin, MODEL)
    response = viewer.request(method, PREFIX + path, json=body)
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"user 'viewer' may not edit DAG(s) {MODEL}__train, {MODEL}__infer of model '{MODEL}'"
    )
    after = summary(admin, MODEL)
    assert (after["dags"], after["live_version"]) == (before["dags"], before["live_version"])


def test_a_viewer_may_read_every_model(viewer: httpx.Client) -> None:
    assert viewer.get(f"{PREFIX}/models/{MODEL}").status_code == 200


# -- listing ------------------------------------------------------------------------------------


def test_listing_shows_every_model_in_the_dags_folder(admin: httpx.Client) -> None:
    names = {m["name"] for m in models(admin)["models"]}
    assert {"iris", "diabetes", "iris_s3", MODEL, "unreachable"} <= names


def test_listing_shows_a_model_as_its_definition_describes_it(admin: httpx.Client) -> None:
    iris = summary(admin, "iris")
    assert iris["description"].startswith("Classifies iris flowers")
    assert (iris["tags"], iris["domain"], iris["status"]) == (
        ["example", "classification"],
        "botany",
        "deployed",
    )
    assert (iris["definition_version"], iris["file"]) == ("1.0.0", "iris.yaml")
    assert iris["schedule"] == {"train": "@daily", "infer": "on new version", "evaluate": None}
    assert [(d["dag_id"], d["kind"], d["url"]) for d in iris["dags"]] == [
        ("iris__train", "train", "/dags/iris__train"),
        ("iris__infer", "infer", "/dags/iris__infer"),
    ]


def test_listing_shows_broken_definitions_with_file_line_and_field(admin: httpx.Client) -> None:
    (broken,) = [f for f in models(admin)["invalid"] if f["file"] == "broken/iris_typo.yaml"]
    assert broken["dag_id"] == "model_steps_invalid__broken__iris_typo_yaml"
    typo = next(p for p in broken["problems"] if p["field"] == "steps[0].parameters.clas")
    assert (typo["line"], typo["column"]) == (11, 7)
    assert "unknown field 'clas'" in typo["message"]
    assert typo["text"].startswith("broken/iris_typo.yaml:11:7: steps[0].parameters.clas: ")


def test_a_model_on_s3_lists_through_its_environment_connection(admin: httpx.Client) -> None:
    iris_s3 = summary(admin, "iris_s3")
    assert iris_s3["store_error"] is None
    assert iris_s3["file"] == "s3/iris_s3.yaml"


def test_a_pause_through_airflow_shows_in_the_listing_at_once(admin: httpx.Client) -> None:
    infer = f"{MODEL}__infer"
    try:
        response = admin.patch(f"/api/v2/dags/{infer}", json={"is_paused": False})
        assert response.status_code == 200, response.text
        listed = summary(admin, MODEL)
        assert listed["schedule_status"] == "partly paused"
        assert [d["paused"] for d in listed["dags"]] == [True, False]
    finally:
        admin.patch(f"/api/v2/dags/{infer}", json={"is_paused": True})
    assert summary(admin, MODEL)["schedule_status"] == "paused"


def test_listing_shows_last_runs_and_the_live_version(
    admin: httpx.Client, trained: list[str]
) -> None:
    listed = summary(admin, MODEL)
    assert (listed["live_version"], listed["versions"]) == (pointer_version(MODEL), 2)
    assert listed["published_at"]
    assert set(listed["metrics"]) == {"train", "test"}
    assert 0.8 < listed["metrics"]["test"]["accuracy"] <= 1.0
    train, infer = listed["dags"]
    assert train["last_run"]["state"] == "success"
    assert train["last_run"]["run_id"] and train["last_run"]["end_date"]
    assert infer["last_run"] is None


def test_a_new_definition_file_lists_at_once_as_not_in_airflow_yet(admin: httpx.Client) -> None:
    added = SESSION_DAGS / "api_new" / "api_fresh.yaml"
    added.parent.mkdir()
    try:
        text = (EXAMPLES / "iris.yaml").read_text().replace("name: iris\n", "name: api_fresh\n")
        added.write_text(text)
        fresh = summary(admin, "api_fresh")
        assert fresh["schedule_status"] == "not in Airflow yet"
        assert [d["paused"] for d in fresh["dags"]] == [None, None]
        response = admin.post(f"{PREFIX}/models/api_fresh/pause", json={})
        assert response.status_code == 409
        assert "not in Airflow yet" in response.json()["detail"]
    finally:
        shutil.rmtree(added.parent)
    assert "api_fresh" not in {m["name"] for m in models(admin)["models"]}


# -- one model ----------------------------------------------------------------------------------


def test_model_detail_adds_documentation_steps_and_the_live_card(
    admin: httpx.Client, trained: list[str]
) -> None:
    response = admin.get(f"{PREFIX}/models/{MODEL}")
    assert response.status_code == 200
    detail = response.json()
    (comment,) = detail["comments"]
    assert (comment["date"], comment["author"]) == ("2026-11-23", "api-tests")
    assert [(s["id"], s["name"]) for s in detail["steps"]] == [
        ("scale", "Standard scaler"),
        ("classify", "classify"),
    ]
    assert detail["live_version"] == pointer_version(MODEL)
    assert MODEL in detail["card"]


def test_unknown_model_is_404_with_its_name(admin: httpx.Client) -> None:
    for path in ("", "/versions", "/versions/1"):
        response = admin.get(f"{PREFIX}/models/nope{path}")
        assert response.status_code == 404
        assert response.json() == {"detail": "no model named 'nope'"}


def test_a_model_whose_file_is_broken_is_404_naming_the_model_but_not_its_file(
    admin: httpx.Client, viewer: httpx.Client
) -> None:
    for client in (admin, viewer):
        response = client.get(f"{PREFIX}/models/iris_broken")
        assert response.status_code == 404
        detail = response.json()["detail"]
        assert detail.startswith("model 'iris_broken' does not load: its definition file is ")
        assert "iris_typo" not in detail and "/" not in detail.replace("GET /models", "")


def test_a_model_the_user_may_not_read_is_404_exactly_as_one_that_does_not_exist(
    airflow_api: Any, trained: list[str]
) -> None:
    """A 403 told which models exist (the issue's row 7); every answer is now the same."""
    with airflow_api.client("outsider") as outsider:
        for path in ("", "/versions", "/versions/1", "/versions/1/card"):
            for name in (MODEL, "iris_broken", "no_such_model"):
                response = outsider.get(f"{PREFIX}/models/{name}{path}")
                assert response.status_code == 404
                assert response.json() == {"detail": f"no model named {name!r}"}
        for method, path, body in CHANGES:
            response = outsider.request(method, PREFIX + path, json=body)
            assert (response.status_code, response.json()) == (
                404,
                {"detail": f"no model named {MODEL!r}"},
            )
        listing = models(outsider)
        assert listing["models"] == [] and listing["invalid"] == []


# -- versions and rollback ----------------------------------------------------------------------


def test_versions_list_newest_first_with_the_live_one_marked(
    admin: httpx.Client, trained: list[str]
) -> None:
    assert trained == ["success", "success"]
    listing = admin.get(f"{PREFIX}/models/{MODEL}/versions").json()
    assert (listing["model"], listing["current"]) == (MODEL, 2)
    assert [(v["version"], v["is_current"]) for v in listing["versions"]] == [
        (2, True),
        (1, False),
    ]
    newest = listing["versions"][0]
    assert newest["definition_version"] == "2.1.0"
    assert newest["run_id"] and newest["spec_hash"] and newest["published_at"]
    assert "accuracy" in newest["metrics"]["test"]


def test_a_version_is_its_manifest(admin: httpx.Client, trained: list[str]) -> None:
    manifest = admin.get(f"{PREFIX}/models/{MODEL}/versions/1").json()
    assert (manifest["model"], manifest["version"]) == (MODEL, 1)
    assert [s["step_id"] for s in manifest["steps"]] == ["scale", "classify"]
    assert manifest["steps"][1]["asset"]["url"].endswith("/versions/1/classify/model.joblib")


def test_a_served_manifest_masks_values_named_like_secrets(
    viewer: httpx.Client, trained: list[str]
) -> None:
    manifest = viewer.get(f"{PREFIX}/models/{MODEL}/versions/1").json()
    assert manifest["parameters"]["feature_store_token"] == "***"
    assert "not-a-real-secret" not in json.dumps(manifest)


def test_swagger_and_redoc_pages_are_not_served(anonymous: httpx.Client) -> None:
    """They would skip the app's authentication; /openapi.json documents the API instead."""
    for page in ("/docs", "/redoc"):
        assert anonymous.get(PREFIX + page).status_code == 404


def test_an_unknown_version_is_404(admin: httpx.Client, trained: list[str]) -> None:
    response = admin.get(f"{PREFIX}/models/{MODEL}/versions/99")
    assert response.status_code == 404
    assert response.json() == {"detail": f"model '{MODEL}' has no complete version 99"}


def test_rollback_moves_the_pointer_back_and_forward_again(
    admin: httpx.Client, trained: list[str]
) -> None:
    response = admin.post(f"{PREFIX}/models/{MODEL}/rollback", json={"version": 1})
    assert response.status_code == 200
    assert response.json() == {"model": MODEL, "version": 1, "previous": 2, "infer_run": None}
    assert pointer_version(MODEL) == 1
    assert summary(admin, MODEL)["live_version"] == 1
    again = admin.post(f"{PREFIX}/models/{MODEL}/rollback", json={"version": 2})
    assert again.json() == {"model": MODEL, "version": 2, "previous": 1, "infer_run": None}
    assert pointer_version(MODEL) == 2


def test_rollback_to_the_live_version_is_refused(admin: httpx.Client, trained: list[str]) -> None:
    response = admin.post(f"{PREFIX}/models/{MODEL}/rollback", json={"version": 2})
    assert response.status_code == 409
    assert response.json() == {"detail": f"version 2 of '{MODEL}' is already the live version"}


def test_rollback_to_an_unknown_version_is_404(admin: httpx.Client, trained: list[str]) -> None:
    response = admin.post(f"{PREFIX}/models/{MODEL}/rollback", json={"version": 7})
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"model '{MODEL}' has no complete version 7 (complete versions: 1, 2)"
    }
    assert pointer_version(MODEL) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": "latest"}, "body.version: Input should be a valid integer"),
        ({"version": 0}, "body.version: Input should be greater than or equal to 1"),
        ({}, "body.version: Field required"),
    ],
)
def test_a_bad_rollback_request_says_what_is_wrong(
    admin: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = admin.post(f"{PREFIX}/models/{MODEL}/rollback", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


def test_a_rollback_body_that_is_not_json_says_so(admin: httpx.Client) -> None:
    response = admin.post(
        f"{PREFIX}/models/{MODEL}/rollback",
        content=b"{version: 1",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON decode error" in response.json()["detail"]


# -- pause and resume ---------------------------------------------------------------------------


def test_resume_then_pause_switch_both_dags_in_airflow(admin: httpx.Client) -> None:
    dag_ids = [f"{MODEL}__train", f"{MODEL}__infer"]
    try:
        resumed = admin.post(f"{PREFIX}/models/{MODEL}/resume", json={})
        assert resumed.status_code == 200
        assert [(d["dag_id"], d["paused"]) for d in resumed.json()["dags"]] == [
            (dag_ids[0], False),
            (dag_ids[1], False),
        ]
        assert [dag_paused(admin, d) for d in dag_ids] == [False, False]
        assert summary(admin, MODEL)["schedule_status"] == "active"
    finally:
        paused = admin.post(f"{PREFIX}/models/{MODEL}/pause", json={})
    assert paused.json()["model"] == MODEL
    assert [d["paused"] for d in paused.json()["dags"]] == [True, True]
    assert [dag_paused(admin, d) for d in dag_ids] == [True, True]


def test_a_pause_is_in_each_dags_audit_log_with_its_user_and_reason(admin: httpx.Client) -> None:
    admin.post(f"{PREFIX}/models/{MODEL}/pause", json={"reason": "data source down"})
    for dag_id in (f"{MODEL}__train", f"{MODEL}__infer"):
        response = admin.get(
            "/api/v2/eventLogs", params={"event": "model_steps_pause", "dag_id": dag_id}
        )
        assert response.status_code == 200
        entry = response.json()["event_logs"][-1]
        assert (entry["dag_id"], entry["owner"]) == (dag_id, "admin")
        assert json.loads(entry["extra"]) == {
            "model": MODEL,
            "reason": "data source down",
            "method": "POST",
        }


# -- store outages ------------------------------------------------------------------------------


def test_a_db_stored_connection_reaches_the_models_store(
    admin: httpx.Client, s3_server: str
) -> None:
    s3_helpers.create_bucket(s3_server, OUTAGE_BUCKET)
    set_outage_connection(admin, s3_server)
    unreachable = summary(admin, "unreachable")
    assert unreachable["store_error"] is None
    assert unreachable["versions"] == 0


def test_a_store_outage_marks_only_its_own_model(admin: httpx.Client) -> None:
    dead = f"http://127.0.0.1:{s3_helpers.free_port()}"
    set_outage_connection(admin, dead)
    listing = models(admin)
    broken = next(m for m in listing["models"] if m["name"] == "unreachable")
    assert broken["store_error"].startswith("cannot read s3://model-steps-outage/models/")
    assert dead in broken["store_error"]
    assert broken["live_version"] is None
    others = [m for m in listing["models"] if m["name"] != "unreachable"]
    assert others and all(m["store_error"] is None for m in others)


def test_a_store_outage_is_503_where_the_store_is_the_answer(admin: httpx.Client) -> None:
    set_outage_connection(admin, f"http://127.0.0.1:{s3_helpers.free_port()}")
    detail = admin.get(f"{PREFIX}/models/unreachable")
    assert detail.status_code == 200
    assert detail.json()["store_error"]
    versions = admin.get(f"{PREFIX}/models/unreachable/versions")
    assert versions.status_code == 503
    assert versions.json()["detail"].startswith("cannot read s3://model-steps-outage/models/")


def test_a_missing_connection_is_a_store_error_naming_it(admin: httpx.Client) -> None:
    admin.delete(f"/api/v2/connections/{OUTAGE_CONN}")
    broken = summary(admin, "unreachable")
    assert broken["store_error"].startswith(f"cannot read connection '{OUTAGE_CONN}': ")


# -- the app itself -----------------------------------------------------------------------------


def test_the_app_root_opens_the_models_page(admin: httpx.Client) -> None:
    response = admin.get(f"{PREFIX}/")
    assert response.status_code == 307
    assert response.headers["location"] == f"{PREFIX}/ui/"


def test_the_models_page_is_served_to_a_logged_in_browser(airflow_api: Any) -> None:
    cookies = {"_token": airflow_api.token("viewer")}
    with httpx.Client(base_url=airflow_api.base_url, cookies=cookies) as browser:
        response = browser.get(f"{PREFIX}/ui/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_the_page_folder_serves_nothing_outside_it(admin: httpx.Client) -> None:
    response = admin.get(f"{PREFIX}/ui/%2e%2e/api.py")
    assert response.status_code == 404
    assert "create_app" not in response.text


def test_airflow_lists_the_api_and_the_models_entry_of_its_navigation(
    admin: httpx.Client,
) -> None:
    plugins = admin.get("/api/v2/plugins").json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "model_steps"]
    assert [(a["url_prefix"], a["name"]) for a in plugin["fastapi_apps"]] == [
        (PREFIX, "Model steps")
    ]
    (view,) = plugin["external_views"]
    assert (view["name"], view["href"], view["url_route"], view["destination"]) == (
        "Models",
        f"{PREFIX}/ui/",
        "models",
        "nav",
    )
    icon = admin.get(view["icon"])
    assert (icon.status_code, icon.headers["content-type"]) == (200, "image/svg+xml")


def test_openapi_documents_the_response_models(viewer: httpx.Client) -> None:
    spec = viewer.get(f"{PREFIX}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"ModelList", "ModelSummary", "ModelDetail", "VersionList", "Manifest"} <= set(schemas)
    assert {"RollbackResult", "PauseResult", "InvalidFile", "DagState", "ErrorBody"} <= set(schemas)
    listing = spec["paths"]["/models"]["get"]["responses"]
    assert listing["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ModelList"
    }
    assert "401" in listing and "404" in listing
