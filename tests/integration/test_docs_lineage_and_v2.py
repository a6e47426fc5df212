"""The lineage and Open Inference Protocol how-to pages run as a reader runs them.

Each page runs in a project of its own: the lineage page with its own Airflow home (its
``airflow dags test`` must not touch the session's DAGs), the protocol page beside a trained
``iris`` model that ``model-steps serve`` finds by name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import attr
import pytest
from openlineage.client.transport import get_default_factory
from openlineage.client.transport.http import HttpTransport

from model_steps.airflow.lineage import MODEL_VERSION_FACET, ModelVersionDatasetFacet
from tests.conftest import EXAMPLES, REPO
from tests.doc_pages import Project, blocks, run_page
from tests.lab import make_lab
from tests.s3 import free_port

pytestmark = pytest.mark.integration

LINEAGE = REPO / "docs" / "how-to" / "lineage.md"
PROTOCOL = REPO / "docs" / "how-to" / "open-inference-protocol.md"
AIRFLOW_SETTINGS = ("AIRFLOW_HOME", "AIRFLOW_CONFIG", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")


def bin_path() -> str:
    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def test_the_lineage_page_runs(example_data: Path, tmp_path: Path) -> None:
    home = tmp_path / "airflow"
    home.mkdir()
    shutil.copytree(EXAMPLES, tmp_path / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **{k: v for k, v in os.environ.items() if k not in AIRFLOW_SETTINGS},
        "PATH": bin_path(),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
        "MODEL_STEPS_ASSETS_ROOT": str(tmp_path / "assets"),
    }
    made = subprocess.run(
        [sys.executable, "-c", "from airflow.utils import db; db.initdb()"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    ran = run_page(LINEAGE, Project(tmp_path, env, free_port()))
    assert [block.lang for block in ran] == ["console", "console", "console"]
    events = [
        json.loads(line) for line in (tmp_path / "lineage-events.jsonl").read_text().splitlines()
    ]
    publish = [
        e
        for e in events
        if e["job"]["name"] == "iris__train.publish" and e["eventType"] == "COMPLETE"
    ]
    assert publish[0]["outputs"][0]["facets"][MODEL_VERSION_FACET]["decision"] == "live"


def test_the_marquez_transport_on_the_lineage_page_is_one_the_client_builds() -> None:
    text = LINEAGE.read_text()
    (config,) = re.findall(r"TRANSPORT='(\{\"type\": \"http\".*\})'", text)
    transport = get_default_factory().create(json.loads(config))
    assert isinstance(transport, HttpTransport)
    assert transport.url == "http://localhost:5000"


def test_the_facet_shown_on_the_lineage_page_has_the_facets_fields() -> None:
    (shown,) = [json.loads(block.text) for block in blocks(LINEAGE) if block.lang == "json"]
    fields = {field.name for field in attr.fields(ModelVersionDatasetFacet)}
    assert set(shown[MODEL_VERSION_FACET]) == {name for name in fields if not name.startswith("_")}


def test_the_open_inference_protocol_page_runs(example_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    make_lab(folder, example_data / "iris" / "train.csv", name="iris").train()
    env = {**os.environ, "PATH": bin_path(), "MODEL_STEPS_DAGS_FOLDER": str(folder)}
    ran = run_page(PROTOCOL, Project(tmp_path, env, free_port()))
    assert [block.lang for block in ran] == ["console", "console", "python"]
