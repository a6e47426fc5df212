"""Datasets are named as OpenLineage's naming conventions say, and lineage stays optional."""

from __future__ import annotations

import subprocess
import sys

import pytest

from model_steps.airflow.lineage import dataset_name


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/data/iris/train.csv", ("file", "/data/iris/train.csv")),
        ("file:///data/iris/train.csv", ("file", "/data/iris/train.csv")),
        ("file://host-a/data/iris/train.csv", ("file://host-a", "/data/iris/train.csv")),
        ("s3://bucket/data/iris/train.csv", ("s3://bucket", "data/iris/train.csv")),
        ("s3://bucket/models/iris", ("s3://bucket", "models/iris")),
        ("gs://bucket/data/train.parquet", ("gs://bucket", "data/train.parquet")),
        ("memory://data/train.csv", ("memory://data", "/train.csv")),
    ],
)
def test_a_dataset_is_named_as_openlineage_names_it(url: str, expected: tuple[str, str]) -> None:
    assert dataset_name(url) == expected


def test_a_relative_local_path_is_named_by_its_absolute_path() -> None:
    namespace, name = dataset_name("data/train.csv")
    assert namespace == "file"
    assert name.startswith("/") and name.endswith("/data/train.csv")


def test_building_the_dags_imports_neither_openlineage_nor_our_lineage_code() -> None:
    """Only Airflow itself reads the installed provider's metadata; the client stays unloaded."""
    code = (
        "import os, sys; from pathlib import Path;"
        "from model_steps.airflow.dags import build_dags;"
        "build_dags(Path('dags'), dict(os.environ));"
        "print(sorted(m for m in sys.modules"
        " if m.startswith('openlineage') or m == 'model_steps.airflow.lineage'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
