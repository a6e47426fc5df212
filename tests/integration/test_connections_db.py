"""A connection added with ``airflow connections add`` (or the UI) works outside tasks too.

It lives in the metadata DB, which ``airflow.sdk``'s lookup does not read in a plain process:
docker/compose.yaml's init job stored ``model_steps_s3`` there and its next command,
``model-steps example-data``, failed with ``The conn_id 'model_steps_s3' isn't defined``. Each
test here uses a connection that exists only in the session's metadata DB, never in a variable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import s3fs

from model_steps.cli import main
from tests.integration.test_serve import FLOWER, POLL, predict, serving, wait_ready
from tests.lab import Lab, make_lab
from tests.s3 import create_bucket, storage_options

pytestmark = pytest.mark.integration

STORED = "model_steps_stored_s3"
"""In the metadata DB only: no ``AIRFLOW_CONN_`` variable names it."""
AIRFLOW = Path(sys.executable).with_name("airflow")


def same_deployment() -> dict[str, str]:
    """One deployment, one fernet key: another process decrypts what this one's key encrypted."""
    from airflow.configuration import conf

    return {"AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key")}


@pytest.fixture(scope="module")
def stored_connection(airflow_db: None, s3_server: str) -> str:
    """``model_steps_stored_s3`` added the way an operator adds it: ``airflow connections add``."""
    assert f"AIRFLOW_CONN_{STORED.upper()}" not in os.environ
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    added = subprocess.run(
        [str(AIRFLOW), "connections", "add", STORED, "--conn-json", json.dumps(connection)],
        capture_output=True,
        text=True,
        env={**os.environ, **same_deployment()},
    )
    assert added.returncode == 0, added.stdout + added.stderr
    return STORED


def lab_on_s3(folder: Path, name: str, data: Path, s3_server: str, conn_id: str) -> Lab:
    """A model whose store is in a new bucket, reached through ``conn_id``."""
    return make_lab(
        folder,
        data / "iris" / "train.csv",
        f"s3://{create_bucket(s3_server)}/models",
        name=name,
        conn_id=conn_id,
        storage_options=storage_options(s3_server),
    )


def test_example_data_reaches_s3_through_a_connection_stored_in_the_metadata_db(
    stored_connection: str, s3_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = create_bucket(s3_server)

    code = main(["example-data", f"s3://{bucket}/data", "--conn-id", stored_connection])

    assert code == 0, capsys.readouterr().err
    files = s3fs.S3FileSystem(**storage_options(s3_server)).find(f"{bucket}/data")
    assert f"{bucket}/data/iris/train.csv" in files


def test_a_model_whose_store_connection_is_in_the_metadata_db_lists_its_versions(
    stored_connection: str,
    s3_server: str,
    example_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lab = lab_on_s3(tmp_path, "stored", example_data, s3_server, stored_connection)
    lab.train()
    monkeypatch.setenv("MODEL_STEPS_DAGS_FOLDER", str(tmp_path))

    code = main(["versions", "stored"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1" in out.split()


def test_serve_loads_a_model_whose_connection_is_in_the_metadata_db(
    stored_connection: str, s3_server: str, example_data: Path, tmp_path: Path
) -> None:
    lab = lab_on_s3(tmp_path, "served", example_data, s3_server, stored_connection)
    version = lab.train()
    with serving(
        str(lab.definition),
        "--poll-interval",
        POLL,
        log=tmp_path / "serve.log",
        environ=same_deployment(),
    ) as server:
        wait_ready(server)
        response = predict(server, [FLOWER])
        assert response.status_code == 200, response.text
        assert response.json()["version"] == version


def test_a_connection_defined_nowhere_is_refused_naming_every_place_looked(
    airflow_db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["example-data", "s3://nowhere/data", "--conn-id", "model_steps_nowhere"])

    err: Any = capsys.readouterr().err
    assert code != 0
    assert "model_steps_nowhere" in err
    assert "metadata DB" in err
