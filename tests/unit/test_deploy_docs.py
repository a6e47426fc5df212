"""docs/how-to/deploy.md and docker/README.md say what the repository does.

The ``docker compose ... run`` commands run in tests/integration/test_compose.py. What needs a
container engine or a cluster (``docker build``, ``kubectl``, ``helm``) cannot run here, so these
tests run the parts that can: the secret generators, the Helm values against the Secrets the
page creates, the connection JSON, the supported versions against pyproject.toml, the Dockerfile
and CI, and every setting the pages tell an operator to change against the compose file.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys
import tomllib
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from model_steps.airflow.connections import storage_options
from tests.conftest import REPO

GUIDE = REPO / "docs" / "how-to" / "deploy.md"
DOCKER_README = REPO / "docker" / "README.md"
CHART_SECRETS = {
    "fernetKeySecretName": "fernet-key",
    "apiSecretKeySecretName": "api-secret-key",
    "jwtSecretName": "jwt-secret",
}
"""The official chart's values naming a Secret, and the key it reads in that Secret."""


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def kubectl_secrets() -> dict[str, tuple[str, str]]:
    """``kubectl create secret generic NAME --from-literal=KEY=VALUE``: NAME -> (KEY, VALUE)."""
    found = {}
    for block in blocks(GUIDE.read_text(), "bash"):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith("kubectl create secret generic"):
                words = shlex.split(command, posix=True)
                key, value = words[5].removeprefix("--from-literal=").split("=", 1)
                found[words[4]] = (key, value)
    return found


def helm_values() -> dict[str, Any]:
    (values,) = [
        block for block in blocks(GUIDE.read_text(), "yaml") if block.startswith("images:")
    ]
    loaded: dict[str, Any] = yaml.safe_load(values)
    return loaded


def generated(command: str) -> str:
    """Run what a page puts in ``$(...)`` and return its output."""
    inner = re.fullmatch(r"\$\((.*)\)", command)
    assert inner is not None, command
    words = shlex.split(inner[1])
    if words[0] == "python":
        words[0] = sys.executable
    return subprocess.run(words, capture_output=True, text=True, check=True).stdout.strip()


def test_the_helm_values_name_the_three_secrets_the_page_creates_with_the_keys_it_reads() -> None:
    values = helm_values()
    secrets = kubectl_secrets()
    for setting, key in CHART_SECRETS.items():
        assert secrets[values[setting]][0] == key, setting


def test_the_jwt_secret_the_page_generates_is_long_enough_for_hs512() -> None:
    _, command = kubectl_secrets()["airflow-jwt-secret"]
    assert len(generated(command).encode()) >= 64


def test_the_fernet_key_the_page_generates_is_a_fernet_key() -> None:
    from cryptography.fernet import Fernet

    _, command = kubectl_secrets()["airflow-fernet-key"]
    key = generated(command)
    assert len(base64.urlsafe_b64decode(key)) == 32
    Fernet(key)


def test_the_connection_secret_is_the_one_the_deployment_names_and_reaches_s3_by_role() -> None:
    values = helm_values()
    (entry,) = values["secret"]
    key, connection = kubectl_secrets()[entry["secretName"]]
    assert entry["secretKey"] == key
    env = {item["name"]: item["value"] for item in values["env"]}
    assert entry["envName"] == f"AIRFLOW_CONN_{env['MODEL_STEPS_CONN_ID'].upper()}"
    parsed = json.loads(connection)
    options = storage_options(parsed["conn_type"], None, None, parsed["extra"])
    assert options == {"client_kwargs": {"region_name": "eu-west-1"}}  # no keys: the pod's role


def test_the_supported_versions_are_the_ones_the_package_and_ci_declare() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    page = GUIDE.read_text()
    row = re.search(r"^\| Python \| ([^|]+) \|", page, flags=re.MULTILINE)
    assert row is not None
    stated = re.findall(r"3\.\d+", row[1])
    declared = SpecifierSet(project["requires-python"])
    assert [v for v in (f"3.{minor}" for minor in range(8, 16)) if v in declared] == stated
    ci = (REPO / ".ci" / "run").read_text()
    other = re.search(r'^OTHER_PYTHONS="([^"]+)"', ci, flags=re.MULTILINE)
    assert other is not None
    assert ["3.11", *other[1].split()] == stated
    airflow = next(
        Requirement(r) for r in project["dependencies"] if r.startswith("apache-airflow")
    )
    assert str(airflow.specifier) in {">=3.3.2,<3.4", "<3.4,>=3.3.2"}
    assert "| Airflow | 3.3 (3.3.2 or later, below 3.4) |" in page
    image = re.search(r"ARG AIRFLOW_VERSION=(\S+)", (REPO / "docker" / "Dockerfile").read_text())
    assert image is not None
    assert f"`apache/airflow:{image[1]}`, its default Python" in page


@pytest.mark.parametrize("page", [GUIDE, DOCKER_README], ids=lambda p: p.name)
def test_every_compose_setting_a_page_tells_an_operator_to_change_exists(page: Any) -> None:
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    common = compose["x-airflow-common"]["environment"]
    snippets = [b for b in blocks(page.read_text(), "yaml") if not b.startswith("images:")]
    for snippet in snippets:
        for key in yaml.safe_load(snippet):
            assert key in common, key
    for variable in re.findall(r"^([A-Z_]+)=\.\.\.", page.read_text(), flags=re.MULTILINE):
        assert f"${{{variable}:-" in (REPO / "docker" / "compose.yaml").read_text(), variable
