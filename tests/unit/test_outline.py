"""The outline a DAG carries for the Models API: what the API needs, and nothing of code or data."""

from __future__ import annotations

import json
import os
from pathlib import Path

from model_steps.airflow.dags import build_dags
from model_steps.airflow.outline import InvalidOutline, ModelOutline, read_outline
from tests.conftest import DATA, EXAMPLES


def carried(folder: Path) -> dict[str, ModelOutline | InvalidOutline | None]:
    """Each built DAG's outline, read back from its first task as the API reads it."""
    dags = build_dags(folder, os.environ)
    return {
        dag_id: read_outline(next(iter(dag.task_dict.values())).doc_json)
        for dag_id, dag in dags.items()
    }


def test_a_models_train_dag_carries_its_outline_and_its_other_dags_do_not() -> None:
    outlines = carried(EXAMPLES)
    diabetes = outlines["diabetes__train"]
    assert isinstance(diabetes, ModelOutline)
    assert (diabetes.name, diabetes.file, diabetes.status) == (
        "diabetes",
        "diabetes.yaml",
        "undeployed",
    )
    assert diabetes.dags == {
        "diabetes__train": "train",
        "diabetes__infer": "infer",
        "diabetes__evaluate": "evaluate",
    }
    assert [s.id for s in diabetes.steps] == ["features", "regress"]
    assert diabetes.assets.directory == "diabetes"
    assert outlines["diabetes__infer"] is None
    assert outlines["diabetes__evaluate"] is None


def test_the_outline_holds_no_code_no_data_url_and_no_init_argument() -> None:
    (text,) = [
        dag.task_dict["check"].doc_json
        for dag_id, dag in build_dags(EXAMPLES, os.environ).items()
        if dag_id == "diabetes__train"
    ]
    for absent in (
        "model_code",
        "add_interactions",
        "sklearn.linear_model",
        "train.parquet",
        "alpha",
        "pairs",
    ):
        assert absent not in text


def test_a_parameter_named_like_a_secret_is_masked_in_the_outline(tmp_path: Path) -> None:
    (tmp_path / "api_iris.yaml").write_text((DATA / "dagbag" / "api" / "api_iris.yaml").read_text())
    outline = carried(tmp_path)["api_iris__train"]
    assert isinstance(outline, ModelOutline)
    assert outline.parameters["feature_store_token"]["default"] == "***"
    assert "not-a-real-secret" not in json.dumps(outline.model_dump())


def test_a_broken_files_placeholder_carries_its_located_problems_and_model_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "team").mkdir()
    typo = (DATA / "dagbag" / "broken" / "iris_typo.yaml").read_text()
    (tmp_path / "team" / "typo.yaml").write_text(typo)
    (outline,) = carried(tmp_path).values()
    assert isinstance(outline, InvalidOutline)
    assert (outline.file, outline.name) == ("team/typo.yaml", "iris_broken")
    problem = next(p for p in outline.problems if p.field == "steps[0].parameters.clas")
    assert (problem.line, problem.column) == (11, 7)


def test_a_foreign_or_damaged_document_is_no_outline() -> None:
    assert read_outline(None) is None
    assert read_outline('{"title": "a hand-written doc_json"}') is None
    assert read_outline('{"model_steps_outline": {"kind": "model"}}') is None
