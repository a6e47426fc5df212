"""Data for the example models, written from scikit-learn's bundled datasets (no download).

``make run`` calls ``model-steps example-data`` so the examples in ``dags/`` train and infer on
a fresh clone with no network; the tests use the same function. The root is any fsspec URL (a
folder, or ``s3://bucket/prefix`` for a deployment whose data lives on S3), written the way
tasks write their outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from model_steps.definition.data_locations import places_under
from model_steps.runtime.tables import write_table

__all__ = ["write_example_data"]


def write_example_data(
    root: str | Path, storage_options: Mapping[str, Any] | None = None
) -> list[str]:
    """Write iris (csv) and diabetes (parquet) training, scoring and labelled tables under ``root``.

    Returns the locations written (``root`` joined with each table's name). ``root`` is the
    operator's choice (a command-line argument), not a definition's, so it is the one place
    allowed here.
    """
    base = str(root) if "://" in str(root) else str(Path(root).resolve())
    places = places_under(base, "the example data is written under its root")
    from sklearn.datasets import load_diabetes, load_iris

    iris = load_iris(as_frame=True).frame
    iris.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    iris["species"] = iris["species"].map(dict(enumerate(load_iris().target_names)))
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    tables = {
        "iris/train.csv": iris,
        "iris/score.csv": iris.drop(columns="species").sample(30, random_state=1),
        "diabetes/train.parquet": diabetes,
        "diabetes/score.parquet": diabetes.drop(columns="progression").head(40),
        # Labelled rows the evaluate DAG scores the live version on (a sample stands in for
        # fresh outcomes, which a real deployment collects after predicting).
        "diabetes/labelled.parquet": diabetes.sample(150, random_state=3),
    }
    written = []
    for name, frame in tables.items():
        url = f"{base.rstrip('/')}/{name}"
        fmt = name.rsplit(".", 1)[1]
        write_table(frame, url, fmt, places=places, storage_options=storage_options)
        written.append(url)
    return written
