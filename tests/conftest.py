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

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(SESSION_DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(AIRFLOW_HOME / "plugins"),
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(AIRFLOW_HOME / "logs"),
        "MODEL_STEPS_ASSETS_ROOT": str(AIRFLOW_HOME / "assets"),
        "MODEL_STEPS_DATA_ROOT": str(AIRFLOW_HOME / "data"),
    }
)
for leftover in ("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "_AIRFLOW_PARSING_CONTEXT_TASK_ID"):
    os.environ.pop(leftover, None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
