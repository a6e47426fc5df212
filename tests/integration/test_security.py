"""Attacks that only show at run time or in the API, tried for real and refused.

Hostile trigger configs run the ``guarded`` model (tests/data/dagbag/security/) with
``dag.test()`` against the session's moto S3 server; definitions that reach for secrets and
forged browser requests go to the real Airflow API server. The attacks that ``validate``
already refuses are the corpus in tests/data/specs/invalid/security/.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import s3fs

from model_steps.definition.loader import load_and_validate
from model_steps.errors import UnsafeUrlError
from model_steps.runtime.context import RunInfo, environment
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from model_steps.settings import load_settings
from model_steps.store.model_store import ModelStore, open_store
from tests.conftest import SESSION_DAGS
from tests.integration.conftest import S3_SECRET

pytestmark = pytest.mark.integration

MODEL = "guarded"
BUCKET = "model-steps-e2e"
PREFIX = "/model-steps"


def guarded_store(s3_models: dict[str, Any]) -> ModelStore:
    return open_store(f"{s3_models['root']}/{MODEL}", s3_models["storage_options"])


def bucket_keys(s3_models: dict[str, Any]) -> list[str]:
    fs = s3fs.S3FileSystem(**s3_models["storage_options"])
    fs.invalidate_cache()
    return list(fs.find(BUCKET))


@pytest.fixture(scope="module")
def masked_run(run_dag: Any, example_data: Path, s3_models: dict[str, Any]) -> int:
    """One training run whose config holds the S3 connection's password; its version."""
    outcome = run_dag(f"{MODEL}__train", conf={"note": S3_SECRET, "run_name": "masked"})
    assert outcome.state == "success", outcome.errors
    pointer = guarded_store(s3_models).pointer()
    assert pointer is not None
    return pointer.version


# -- trigger configs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "run_name",
    ["../../escape_target/x", "%2e%2e/%2e%2e/escape_target/x", "x::s3://escape_target/x"],
)
def test_a_run_name_leaving_its_folder_fails_the_first_task_before_it_reads_or_writes(
    run_dag: Any, example_data: Path, s3_models: dict[str, Any], run_name: str
) -> None:
    before = bucket_keys(s3_models)
    outcome = run_dag(f"{MODEL}__train", conf={"run_name": run_name})
    assert outcome.state == "failed"
    assert [outcome.task_states[task] for task in ("check", "scale", "classify")] == [
        "failed",
        "upstream_failed",
        "upstream_failed",
    ]
    assert "steps[scale].parameters.output.train.url" in outcome.errors["check"]
    assert "which is refused" in outcome.errors["check"]
    assert bucket_keys(s3_models) == before  # not even the run's scratch was written


def test_a_run_whose_rendered_url_the_deployment_does_not_allow_fails_before_any_io(
    run_dag: Any,
    example_data: Path,
    s3_models: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The DAG was parsed when s3://model-steps-e2e/guarded/ was allowed; the workers' setting
    # now allows the local data only, and the task's own check holds without a new parse.
    monkeypatch.setenv("MODEL_STEPS_ALLOWED_DATA", str(example_data))
    before = bucket_keys(s3_models)
    outcome = run_dag(f"{MODEL}__train", conf={"run_name": "tightened"})
    assert outcome.task_states["check"] == "failed"
    error = outcome.errors["check"]
    assert "steps[scale].parameters.output.train.url" in error
    assert "s3://model-steps-e2e/guarded/tightened/iris.csv' is refused" in error
    assert (
        f"allowed only under MODEL_STEPS_ALLOWED_DATA ([model_steps] allowed_data): {example_data}"
        in error
    )
    assert bucket_keys(s3_models) == before


def test_a_task_never_reads_a_table_in_a_bucket_outside_the_allowed_places(
    example_data: Path, s3_models: dict[str, Any], s3_bucket: str
) -> None:
    options = dict(s3_models["storage_options"])
    fs = s3fs.S3FileSystem(**options)
    stolen = f"s3://{s3_bucket}/secrets/train.csv"
    fs.pipe_file(stolen, (example_data / "iris" / "train.csv").read_bytes())
    (loaded,) = load_and_validate([SESSION_DAGS / "security" / "guarded.yaml"], os.environ).models
    env = environment(loaded.spec, load_settings(), options)
    run = RunInfo(f"{MODEL}__train", "manual__tampered")
    tampered = Rendered(init={}, inputs={"train": stolen})  # as if rendering had been skipped
    with pytest.raises(UnsafeUrlError, match="outside the allowed data locations"):
        train_step(loaded.spec, "scale", run, env, tampered)
    assert fs.cat_file(stolen)  # it was there to read, with these very credentials


def test_an_undeclared_trigger_key_fails_the_first_task_with_did_you_mean(
    run_dag: Any, example_data: Path, s3_models: dict[str, Any]
) -> None:
    before = bucket_keys(s3_models)
    outcome = run_dag(f"{MODEL}__train", conf={"run_nam": "typo"})
    assert outcome.task_states["check"] == "failed"
    assert "'run_nam' (did you mean 'run_name'?)" in outcome.errors["check"]
    assert bucket_keys(s3_models) == before


def test_a_value_breaking_its_parameters_pattern_never_runs(
    run_dag: Any, example_data: Path, s3_models: dict[str, Any]
) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    before = bucket_keys(s3_models)
    with pytest.raises(ParamValidationError, match="does not match"):
        run_dag(f"{MODEL}__train", conf={"label": "../../escape_target"})
    assert bucket_keys(s3_models) == before


def test_a_secret_in_a_run_parameter_is_masked_in_the_manifest_and_card(
    masked_run: int, s3_models: dict[str, Any]
) -> None:
    store = guarded_store(s3_models)
    folder = store.path("versions", str(masked_run))
    documents = [store.fs.cat_file(f"{folder}/{name}").decode() for name in ("manifest.json",)]
    documents.append(store.fs.cat_file(f"{folder}/MODEL_CARD.md").decode())
    assert all(S3_SECRET not in text for text in documents)
    assert store.manifest(masked_run).parameters["note"] == "***"


def test_the_first_publish_claims_the_store_for_its_model(
    masked_run: int, s3_models: dict[str, Any]
) -> None:
    store = guarded_store(s3_models)
    assert json.loads(store.fs.cat_file(store.path("owner.json")))["model"] == MODEL


def test_airflows_rendered_templates_view_shows_what_the_sandbox_rendered(
    masked_run: int,
) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        fields = session.scalars(
            select(RenderedTaskInstanceFields.rendered_fields)
            .where(RenderedTaskInstanceFields.dag_id == f"{MODEL}__train")
            .where(RenderedTaskInstanceFields.task_id == "classify")
        ).all()
    assert {"init": {"C": 1.0, "max_iter": 300}, "inputs": {}, "outputs": {}} in [
        f["rendered"] for f in fields
    ]


# -- the Models API --------------------------------------------------------------------------------


def test_a_served_manifest_never_shows_a_secret_airflow_knows(
    masked_run: int, admin: httpx.Client
) -> None:
    response = admin.get(f"{PREFIX}/models/{MODEL}/versions/{masked_run}")
    assert response.status_code == 200
    assert S3_SECRET not in response.text


@pytest.fixture
def added_definition(admin: httpx.Client) -> Iterator[Path]:
    """A definition file dropped into the session's DAGs folder for one test, then removed."""
    folder = SESSION_DAGS / "security_added"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder)
        admin.get(f"{PREFIX}/models")  # the next listing reloads the folder without it


def definition(name: str, extra: str) -> str:
    return (
        "apiVersion: model-steps/v1\nkind: Model\n"
        f"name: {name}\n{extra}"
        "steps:\n  - id: fit\n    parameters:\n      package: sklearn.linear_model\n"
        "      class: LinearRegression\n      input: {train: {url: s3://data/train.csv}}\n"
    )


def test_a_definition_reading_airflows_secrets_is_listed_as_invalid_without_them(
    admin: httpx.Client, added_definition: Path
) -> None:
    extra = (
        'description: "${AIRFLOW_CONN_MODEL_STEPS_S3} ${AIRFLOW__API_AUTH__JWT_SECRET}"\n'
        "assets: {conn_id: aws_default}\n"
    )
    (added_definition / "thief.yaml").write_text(definition("thief", extra))
    response = admin.get(f"{PREFIX}/models")
    (invalid,) = [f for f in response.json()["invalid"] if f["file"].endswith("thief.yaml")]
    messages = [p["message"] for p in invalid["problems"]]
    assert any("AIRFLOW_CONN_MODEL_STEPS_S3 may not be used" in m for m in messages)
    assert any("connection 'aws_default' is not one definitions may use" in m for m in messages)
    assert S3_SECRET not in response.text
    assert "thief" not in {m["name"] for m in response.json()["models"]}


def test_an_allowed_variables_value_is_never_echoed_in_an_error(
    admin: httpx.Client, added_definition: Path, s3_models: dict[str, Any]
) -> None:
    extra = "schedule: {train: '${MODEL_STEPS_S3_ASSETS_ROOT}'}\n"
    (added_definition / "echo.yaml").write_text(definition("echo", extra))
    response = admin.get(f"{PREFIX}/models")
    (invalid,) = [f for f in response.json()["invalid"] if f["file"].endswith("echo.yaml")]
    assert "'${MODEL_STEPS_S3_ASSETS_ROOT}' is not a schedule" in invalid["problems"][0]["text"]
    assert s3_models["root"] not in response.text


def test_a_value_airflow_knows_as_secret_is_masked_in_every_answer(
    admin: httpx.Client, added_definition: Path
) -> None:
    """Even text a definition holds literally: the listing read the S3 connection first."""
    extra = f"description: 'leaked {S3_SECRET} here'\n"
    (added_definition / "leaky.yaml").write_text(definition("leaky", extra))
    assert S3_SECRET not in admin.get(f"{PREFIX}/models").text
    detail = admin.get(f"{PREFIX}/models/leaky").json()
    assert detail["description"] == "leaked *** here"


def test_a_store_another_model_owns_is_refused_by_rollback(
    masked_run: int, admin: httpx.Client, s3_models: dict[str, Any]
) -> None:
    store = guarded_store(s3_models)
    owner = store.path("owner.json")
    original = store.fs.cat_file(owner)
    store.fs.pipe_file(owner, json.dumps({"model": "iris"}).encode())
    try:
        response = admin.post(f"{PREFIX}/models/{MODEL}/rollback", json={"version": 1})
    finally:
        store.fs.pipe_file(owner, original)
    assert response.status_code == 409
    assert "belongs to model 'iris'" in response.json()["detail"]


# -- cross-site requests ---------------------------------------------------------------------------

CHANGES = ["rollback", "pause", "resume"]
FORGERIES = {
    "a form": {
        "content": b"version=1",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "a multipart form": {
        "content": b'--x\r\nContent-Disposition: form-data; name="version"\r\n\r\n1\r\n--x--\r\n',
        "headers": {"Content-Type": "multipart/form-data; boundary=x"},
    },
    "a text/plain fetch": {
        "content": b'{"version": 1}',
        "headers": {"Content-Type": "text/plain"},
    },
    "no body at all": {},
    "JSON from another site": {
        "json": {"version": 1},
        "headers": {"Origin": "https://evil.example"},
    },
    "JSON without an Origin": {"json": {"version": 1}},
}
REFUSED_WITH = {"JSON from another site": 403, "JSON without an Origin": 403}


@pytest.fixture(scope="module")
def signed_in_browser(airflow_api: Any) -> Iterator[httpx.Client]:
    """What another site's page can use: the Airflow UI's session cookie, nothing else."""
    cookies = {"_token": airflow_api.token("admin")}
    with httpx.Client(base_url=airflow_api.base_url, cookies=cookies, timeout=60) as browser:
        yield browser


def paused(admin: httpx.Client) -> bool:
    state: bool = admin.get(f"/api/v2/dags/{MODEL}__train").json()["is_paused"]
    return state


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_change_carrying_the_session_cookie_changes_nothing(
    signed_in_browser: httpx.Client,
    admin: httpx.Client,
    s3_models: dict[str, Any],
    change: str,
    forgery: str,
) -> None:
    before = (paused(admin), guarded_store(s3_models).pointer())
    response = signed_in_browser.post(f"{PREFIX}/models/{MODEL}/{change}", **FORGERIES[forgery])
    assert response.status_code == REFUSED_WITH.get(forgery, 415), response.text
    assert (paused(admin), guarded_store(s3_models).pointer()) == before


def test_the_models_page_changes_a_model_with_its_cookie_from_airflows_origin(
    signed_in_browser: httpx.Client, admin: httpx.Client, airflow_api: Any
) -> None:
    was_paused = paused(admin)
    page = {"json": {}, "headers": {"Origin": airflow_api.base_url}}
    flipped = "resume" if was_paused else "pause"
    back = "pause" if was_paused else "resume"
    try:
        response = signed_in_browser.post(f"{PREFIX}/models/{MODEL}/{flipped}", **page)
        assert response.status_code == 200, response.text
        assert paused(admin) is not was_paused
    finally:
        signed_in_browser.post(f"{PREFIX}/models/{MODEL}/{back}", **page)
    assert paused(admin) is was_paused


def test_the_openapi_document_needs_a_user(anonymous: httpx.Client, viewer: httpx.Client) -> None:
    assert anonymous.get(f"{PREFIX}/openapi.json").status_code == 401
    assert "/models" in viewer.get(f"{PREFIX}/openapi.json").json()["paths"]
