"""Data for the example models, written from scikit-learn's bundled datasets (no download).

``make run`` calls ``model-steps example-data`` so the examples in ``dags/`` train and infer on
a fresh clone with no network; the tests use the same function.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_example_data"]


def write_example_data(root: Path) -> list[Path]:
    """Write iris (csv) and diabetes (parquet) training and scoring tables under ``root``."""
    from sklearn.datasets import load_diabetes, load_iris

    iris = load_iris(as_frame=True).frame
    iris.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    iris["species"] = iris["species"].map(dict(enumerate(load_iris().target_names)))
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    tables = {
        root / "iris" / "train.csv": iris,
        root / "iris" / "score.csv": iris.drop(columns="species").sample(30, random_state=1),
        root / "diabetes" / "train.parquet": diabetes,
        root / "diabetes" / "score.parquet": diabetes.drop(columns="progression").head(40),
    }
    for path, frame in tables.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    return list(tables)
