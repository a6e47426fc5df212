"""One code path: a handler predicts exactly what the infer DAG writes, for the example models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from model_steps.serving.handler import ModelHandler
from model_steps.store.model_store import open_store
from tests.integration.test_train_infer import latest_predictions

pytestmark = pytest.mark.integration

DATA_ROOT = Path(os.environ["MODEL_STEPS_DATA_ROOT"])


@pytest.mark.parametrize(
    ("model", "scores", "pinned"),
    [("iris", "iris/score.csv", False), ("diabetes", "diabetes/score.parquet", True)],
)
def test_the_handler_predicts_what_the_infer_dag_writes(
    run_dag: Any, example_data: Path, session_dags: Path, model: str, scores: str, pinned: bool
) -> None:
    """iris has a templated init (``{{ params.C }}``); diabetes a callable step with init.

    diabetes is undeployed, so serving it takes the explicit pin of a version.
    """
    assert run_dag(f"{model}__train").state == "success"
    outcome = run_dag(f"{model}__infer")
    assert outcome.state == "success", outcome.errors
    published = open_store(f"{os.environ['MODEL_STEPS_ASSETS_ROOT']}/{model}").pointer()
    assert published is not None
    pin = published.version if pinned else None
    handler = ModelHandler.from_definition(session_dags / f"{model}.yaml", pin=pin)
    assert handler.load() == published.version
    path = DATA_ROOT / scores
    rows = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    written = latest_predictions(model)
    assert handler.predict(rows).values() == written["prediction"].tolist()
