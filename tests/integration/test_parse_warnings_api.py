"""The Models listing names a DAG file whose last parse neared Airflow's import timeout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from model_steps.settings import load_settings
from tests.conftest import SESSION_DAGS

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_loader() -> Iterator[Path]:
    """A record, as the loader keeps it, of a 24 s parse of the session's loader file."""
    settings = load_settings()
    assert settings.parse_cache is not None
    records = settings.parse_cache / "parse-times"
    records.mkdir(parents=True, exist_ok=True)
    record = records / "shard_000.json"
    record.write_text(
        json.dumps(
            {
                "folder": str(SESSION_DAGS.resolve()),
                "file": "model_steps_loader.py",
                "seconds": 24.0,
                "limit": 30.0,
                "definitions": 3,
                "models_per_shard": 200,
            }
        )
    )
    yield record
    record.unlink()


def test_the_models_listing_warns_of_a_dag_file_near_the_parse_timeout(
    viewer: httpx.Client, slow_loader: Path
) -> None:
    response = viewer.get("/model-steps/models")
    assert response.status_code == 200, response.text
    (warning,) = response.json()["parse_warnings"]
    assert warning.startswith("model_steps_loader.py took 24.0 s to parse, 80% of Airflow's 30 s")
    assert "models_per_shard (now 200)" in warning
