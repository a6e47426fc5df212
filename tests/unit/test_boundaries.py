"""Module boundaries that keep parsing fast and serving processes free of Airflow."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("airflow", "sklearn", "pandas", "boto3", "botocore", "s3fs", "numpy")


@pytest.mark.parametrize(
    "module",
    [
        "model_steps.spec",
        "model_steps.loader",
        "model_steps.plan",
        "model_steps.cli",
        "model_steps.tasks",
        "model_steps.store",
        "model_steps.handler",
        "model_steps.handler_io",
        "model_steps.serve",
        "model_steps.api_models",
        "model_steps.memory",
    ],
)
def test_module_imports_neither_airflow_nor_scientific_libraries(module: str) -> None:
    code = f"import sys, {module}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_parsing_dags_loads_no_task_runtime() -> None:
    """Airflow parses the DAGs folder constantly; the store and step libraries wait for a task."""
    runtime = ("model_steps.tasks", "model_steps.store", "model_steps.steps", "pandas", "sklearn")
    code = (
        f"import sys, model_steps.dags\nprint(sorted(m for m in {runtime!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
