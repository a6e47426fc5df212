"""Test session set-up: a throwaway Airflow home, created before anything imports Airflow.

Airflow reads its configuration once, at import, so the environment is fixed here, when pytest
loads this file and before any test module is collected. Integration tests share one metadata
DB and one DAGs folder for the whole session (see ``tests/integration/conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "dags"
DATA = REPO / "tests" / "data"

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="model-steps-airflow-"))
SESSION_DAGS = AIRFLOW_HOME / "dags"
INHERITED = ("MODEL_STEPS_", "AIRFLOW__MODEL_STEPS__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
"""Settings a developer's shell may hold (``. .airflow/env``, a deployment's variables): each
would steer what the tests load, so none reaches them. The Makefile's Airflow tuning stays."""
KEPT = frozenset({"MODEL_STEPS_TEST_ARTIFACTS"})
"""Variables that configure the tests themselves, not what they test."""

for inherited in [name for name in os.environ if name.startswith(INHERITED)]:
    if inherited not in KEPT:
        del os.environ[inherited]
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW_CONFIG": str(AIRFLOW_HOME / "airflow.cfg"),  # not the developer's own
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(SESSION_DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(AIRFLOW_HOME / "plugins"),
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(AIRFLOW_HOME / "logs"),
        "MODEL_STEPS_ASSETS_ROOT": str(AIRFLOW_HOME / "assets"),
        "MODEL_STEPS_DATA_ROOT": str(AIRFLOW_HOME / "data"),
        # The session's data: local, the README's s3://data/ and the S3 models' tables (the
        # bucket's models/ folder, the stores, stays out).
        "MODEL_STEPS_ALLOWED_DATA": f"{AIRFLOW_HOME / 'data'}, s3://data/, "
        "s3://model-steps-e2e/data/, s3://model-steps-e2e/guarded/",
    }
)
for leftover in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID"):
    os.environ.pop(leftover, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


# ---- BEGIN S3 test server fixtures (tests/s3.py) ----------------------------------------------
# One moto server per session, started on first use; a fresh bucket for every test that asks.
# Kept as one block at the end of this file: nothing above depends on it.

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from tests import s3 as s3_helpers  # noqa: E402


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of the session's moto server; its process group dies at teardown."""
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with s3_helpers.MotoServer(log).start() as server:
        yield server.endpoint


@pytest.fixture
def s3_storage_options(s3_server: str) -> dict[str, Any]:
    """fsspec storage options for the session's server (fresh per test; botocore mutates them)."""
    return s3_helpers.storage_options(s3_server)


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """The name of a new, empty bucket on the session's server, for this test alone."""
    return s3_helpers.create_bucket(s3_server)


# ---- END S3 test server fixtures --------------------------------------------------------------
