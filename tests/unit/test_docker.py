"""docker/ without a Docker engine: the compose file, the Dockerfile and their README agree.

No engine runs here, so these check what can break silently: a service that lost its health
check or its DAGs mount, a secret that differs between containers (workers' tasks then fail to
authenticate), a bucket or connection the init jobs never create, and an image that installs
something other than what CI tests.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import REPO

DOCKER = REPO / "docker"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
ONE_SHOT = {"airflow-init"}
SHARED = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API_AUTH__JWT_ISSUER",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "MODEL_STEPS_CONN_ID",
    "MODEL_STEPS_ASSETS_ROOT",
    "MODEL_STEPS_ALLOWED_DATA",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def test_compose_runs_the_whole_topology(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "redis", "s3", *ONE_SHOT, *AIRFLOW_SERVICES}


def test_every_long_running_service_has_a_health_check(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
        else:
            assert service["healthcheck"]["test"], name


def test_services_wait_for_what_they_need_and_it_exists(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            assert needed in services, (name, needed)
            expected = "service_completed_successfully" if needed in ONE_SHOT else "service_healthy"
            assert how["condition"] == expected, (name, needed)


def test_every_airflow_container_shares_secrets_urls_and_the_dags_folder(
    services: dict[str, Any],
) -> None:
    airflow = {name: services[name] for name in AIRFLOW_SERVICES}
    for key in SHARED:
        values = {name: service["environment"].get(key) for name, service in airflow.items()}
        assert len(set(values.values())) == 1 and None not in values.values(), (key, values)
    for name, service in airflow.items():
        assert "${AIRFLOW_PROJ_DIR:-..}/dags:/opt/airflow/dags" in service["volumes"], name
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_models_read_and_write_data_only_outside_their_stores(services: dict[str, Any]) -> None:
    from model_steps.definition.data_locations import data_places

    env = services["airflow-worker"]["environment"]
    places = data_places(env, [])
    assert places.refusal(f"{env['MODEL_STEPS_DATA_ROOT']}/iris/train.csv") is None
    assert places.refusal(f"{env['MODEL_STEPS_ASSETS_ROOT']}/iris/current.json") is not None


def test_the_known_driver_traps_are_avoided(services: dict[str, Any]) -> None:
    env = services["airflow-worker"]["environment"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_the_init_job_stores_the_connection_the_services_name_and_hides_no_failure(
    services: dict[str, Any],
) -> None:
    env = services["airflow-worker"]["environment"]
    init = services["airflow-init"]["command"][1]
    assert init.startswith("set -euo pipefail\n")
    assert "|| true" not in init  # a failed admin creation stops the init job
    assert 'airflow connections add "$${MODEL_STEPS_CONN_ID}"' in init
    assert (
        services["airflow-init"]["environment"]["MODEL_STEPS_CONN_ID"] == env["MODEL_STEPS_CONN_ID"]
    )
    for step in ("airflow db migrate", "airflow users create", "model-steps example-data"):
        assert step in init


def test_every_image_is_pinned_by_a_release_tag(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in AIRFLOW_SERVICES:
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"\d+(\.\d+)*(-[a-z0-9]+)?", tag), (name, image)
        assert not repository.startswith("minio/"), "minio/minio and minio/mc left Docker Hub"


def test_the_default_jwt_secret_is_long_enough_for_hs512(compose: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
    default = re.fullmatch(r"\$\{AIRFLOW_JWT_SECRET:-(.+)\}", common)
    assert default is not None
    assert len(default[1].encode()) >= 64


def test_declared_volumes_are_the_ones_used(compose: dict[str, Any]) -> None:
    used = {
        mount.split(":")[0]
        for service in compose["services"].values()
        for mount in service.get("volumes", [])
        if not mount.startswith(("$", ".", "/"))
    }
    assert used == set(compose["volumes"])


def test_the_image_installs_what_ci_tests_against_airflows_constraints() -> None:
    text = dockerfile()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    airflow = next(
        Requirement(r) for r in project["dependencies"] if r.startswith("apache-airflow")
    )
    version = re.search(r"ARG AIRFLOW_VERSION=(\S+)", text)
    assert version and airflow.specifier.contains(version[1])
    # The image's own default Python, and the constraints file for whichever that is.
    assert "FROM apache/airflow:${AIRFLOW_VERSION}\n" in text
    assert "sys.version_info[:2]" in text
    assert "constraints-${AIRFLOW_VERSION}/constraints-${PYTHON_VERSION}.txt" in text
    install = re.search(r'"/opt/model-steps\[([a-z,]+)\]"', text)
    assert install is not None
    image_extras = set(install[1].split(","))
    ci = next(Requirement(r) for r in project["optional-dependencies"]["dev"] if "model-steps" in r)
    assert image_extras == ci.extras == {"ml", "boosting", "cluster"}
    for source in re.findall(r"^COPY (?:--\S+ )+(.+) /opt/\S+$", text, flags=re.MULTILINE):
        for path in source.split():
            assert (REPO / path).exists(), path


def test_the_image_has_the_openmp_runtime_lightgbm_loads() -> None:
    assert re.search(r"apt-get install -y --no-install-recommends libgomp1\b", dockerfile())


def test_model_steps_commands_bypass_airflows_entrypoint() -> None:
    text = dockerfile()
    assert 'ENTRYPOINT ["/usr/bin/dumb-init", "--", "/opt/model-steps/entrypoint.sh"]' in text
    assert "docker/entrypoint.sh /opt/model-steps/entrypoint.sh" in text
    assert (DOCKER / "entrypoint.sh").stat().st_mode & 0o111


def test_the_build_context_leaves_out_everything_the_image_does_not_copy() -> None:
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignored  # everything is left out unless named below
    kept = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    copied = set()
    for source in re.findall(r"^COPY (?:--\S+ )+(.+) /\S+$", dockerfile(), flags=re.MULTILINE):
        copied.update(source.split())
    assert copied == kept


def test_the_cluster_extra_admits_what_airflows_constraints_pin() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [Requirement(r) for r in project["optional-dependencies"]["cluster"]]
    pins = pinned()
    for requirement in extras:
        if requirement.name in pins:
            assert requirement.specifier.contains(pins[requirement.name]), requirement
    assert pins["apache-airflow"] == re.search(r"ARG AIRFLOW_VERSION=(\S+)", dockerfile())[1]  # type: ignore[index]


def pinned() -> dict[str, str]:
    """docker/pins.txt: name -> version."""
    found = {}
    for line in (DOCKER / "pins.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            found[name] = version
    return found


def test_the_readme_names_every_service_and_every_setting_compose_reads(
    compose: dict[str, Any],
) -> None:
    readme = (DOCKER / "README.md").read_text()
    for name in compose["services"]:
        assert f"`{name}`" in readme, name
    variables = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)[:}]", (DOCKER / "compose.yaml").read_text()))
    for variable in variables:
        assert f"`{variable}`" in readme, variable
