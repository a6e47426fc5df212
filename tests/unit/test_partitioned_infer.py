"""An infer run in partitions, task by task as the infer DAG's instances run them (no Airflow).

The model scales iris and classifies it, carrying an ``id`` column past the model; its input is
cut into several partitions, so every test crosses partition boundaries.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from model_steps.definition.data_locations import places_under
from model_steps.definition.loader import load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.errors import PermanentError
from model_steps.runtime.context import Environment, RunInfo, environment
from model_steps.runtime.infer import infer_frame, version_pipeline
from model_steps.runtime.partitioned import (
    infer_partition,
    plan_infer,
    run_progress,
    write_infer_output,
)
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from model_steps.settings import load_settings
from tests.lab import write_iris

MODEL = """\
apiVersion: model-steps/v1
kind: Model
name: parts
assets: {{root: "{root}"}}
steps:
  - id: scale
    has_assets: true
    assets_identifier: scaler.joblib
    parameters:
      package: sklearn.preprocessing
      class: StandardScaler
      input:
        train: {{url: "{data}/train.csv"}}
        infer: {{url: "{data}/score.{fmt}"}}
      carry: [id]
      training: {{target: species}}
  - id: classify
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      init: {{max_iter: 500}}
      output:
        infer: {{url: "{data}/out/predictions.{fmt}"}}
"""
SIZE = 600
"""Bytes in a partition: iris's 150 rows make several."""


class Parts:
    """The model, trained once, and infer runs of it split into partitions."""

    def __init__(self, folder: Path, fmt: str) -> None:
        self.data = folder / "data"
        iris = pd.read_csv(write_iris(folder / "iris"))
        iris.insert(0, "id", [f"flower-{i}" for i in range(len(iris))])
        self.data.mkdir()
        iris.to_csv(self.data / "train.csv", index=False)
        self.score = iris.drop(columns="species").sample(frac=1.0, random_state=2)
        ext = "jsonl" if fmt == "json" else fmt
        if fmt == "parquet":
            self.score.to_parquet(self.data / f"score.{ext}", index=False, row_group_size=10)
        elif fmt == "csv":
            self.score.to_csv(self.data / f"score.{ext}", index=False)
        else:
            self.score.to_json(self.data / f"score.{ext}", orient="records", lines=True)
        path = folder / "parts.yaml"
        path.write_text(MODEL.format(root=folder / "assets", data=self.data, fmt=ext))
        (loaded,) = load_and_validate([path], {}).models
        self.spec: ModelSpec = loaded.spec
        self.output = self.data / "out" / f"predictions.{ext}"
        self.fmt = fmt
        train = RunInfo("parts__train", "manual__train")
        for step in self.spec.steps:
            train_step(self.spec, step.id, train, self.env, Rendered.templates(step, "train"))
        self.version = publish(self.spec, train, self.env)["version"]

    @property
    def env(self) -> Environment:
        env = environment(self.spec, load_settings(), {})
        return replace(env, places=places_under(str(self.data), "the test's data"))

    def rendered(self, step_id: str) -> Rendered:
        step = next(s for s in self.spec.steps if s.id == step_id)
        return Rendered.templates(step, "infer")

    def plan(self, run: RunInfo) -> list[int]:
        return plan_infer(self.spec, run, self.env, self.rendered("scale"), SIZE)

    def step(self, step_id: str, run: RunInfo, partitions: list[int]) -> None:
        for index in partitions:
            infer_partition(self.spec, step_id, index, run, self.env, self.rendered(step_id))

    def run(self, run_id: str) -> pd.DataFrame:
        """Every task of an infer run in order; the output table."""
        run = RunInfo("parts__infer", run_id)
        partitions = self.plan(run)
        assert len(partitions) > 3
        self.step("scale", run, partitions)
        self.step("classify", run, partitions)
        write_infer_output(self.spec, run, self.env, self.rendered("classify"))
        return self.read_output()

    def read_output(self) -> pd.DataFrame:
        if self.fmt == "parquet":
            return pd.read_parquet(self.output)
        if self.fmt == "csv":
            return pd.read_csv(self.output)
        return pd.read_json(self.output, lines=True)

    def one_process(self) -> pd.DataFrame:
        """What a handler serving the version predicts for the whole table in one call."""
        pipeline = version_pipeline(self.env.store.manifest(self.version), self.env)
        return infer_frame(pipeline, self.score.drop(columns="id")).reset_index(drop=True)

    def scratch_root(self, run_id: str) -> Path:
        store = self.env.store
        return Path(store.fs._strip_protocol(store.scratch_url(f"parts__infer__{run_id}")))

    def scratch_files(self, run_id: str) -> list[str]:
        root = self.scratch_root(run_id)
        assert root.is_dir()
        return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture(params=["csv", "parquet", "json"])
def parts(request: pytest.FixtureRequest, tmp_path: Path) -> Parts:
    return Parts(tmp_path, request.param)


@pytest.fixture
def csv_parts(tmp_path: Path) -> Parts:
    return Parts(tmp_path, "csv")


def test_a_partitioned_run_predicts_what_one_process_predicts_for_the_whole_table(
    parts: Parts,
) -> None:
    output = parts.run("manual__1")
    assert output.drop(columns="id").equals(parts.one_process())


def test_the_carried_ids_come_back_in_the_input_order(parts: Parts) -> None:
    output = parts.run("manual__1")
    assert output["id"].tolist() == parts.score["id"].tolist()
    assert list(output.columns) == ["id", "prediction"]


def test_the_output_records_the_rows_and_the_version(csv_parts: Parts) -> None:
    csv_parts.run("manual__1")
    record = csv_parts.env.store.inference("manual__1")
    assert record is not None
    assert (record.rows, record.version) == (150, csv_parts.version)


def test_a_retried_partition_rewrites_only_its_own_part(csv_parts: Parts) -> None:
    run = RunInfo("parts__infer", "manual__retry")
    partitions = csv_parts.plan(run)
    csv_parts.step("scale", run, partitions)
    csv_parts.step("classify", run, partitions)
    before = csv_parts.scratch_files("manual__retry")
    csv_parts.step("classify", replace(run, try_number=2), [1])
    added = sorted(set(csv_parts.scratch_files("manual__retry")) - set(before))
    assert added == [
        "classify/part-00001/try-2/done.json",
        "classify/part-00001/try-2/part.arrow",
    ]
    write_infer_output(csv_parts.spec, run, csv_parts.env, csv_parts.rendered("classify"))
    assert csv_parts.read_output().drop(columns="id").equals(csv_parts.one_process())


def test_a_run_failing_in_a_partition_leaves_the_last_output_as_it_was(csv_parts: Parts) -> None:
    csv_parts.run("manual__1")
    before = csv_parts.output.read_bytes()
    run = RunInfo("parts__infer", "manual__2")
    partitions = csv_parts.plan(run)
    csv_parts.step("scale", run, partitions[:-1])  # the last partition's scale never finished
    with pytest.raises(PermanentError, match="no finished try"):
        csv_parts.step("classify", run, partitions)
    assert csv_parts.output.read_bytes() == before
    assert sorted(p.name for p in csv_parts.output.parent.iterdir()) == [csv_parts.output.name]


def test_a_failed_output_write_leaves_no_partial_table_where_readers_look(
    csv_parts: Parts,
) -> None:
    run = RunInfo("parts__infer", "manual__broken")
    partitions = csv_parts.plan(run)
    csv_parts.step("scale", run, partitions)
    csv_parts.step("classify", run, partitions)
    root = csv_parts.scratch_root("manual__broken")
    (root / "classify" / "part-00002" / "try-1" / "part.arrow").write_bytes(b"not arrow " * 100)
    with pytest.raises(pa.ArrowInvalid):
        write_infer_output(csv_parts.spec, run, csv_parts.env, csv_parts.rendered("classify"))
    assert not csv_parts.output.parent.exists() or list(csv_parts.output.parent.iterdir()) == []


def test_progress_counts_rows_done_of_the_total_per_step(csv_parts: Parts) -> None:
    run = RunInfo("parts__infer", "manual__progress")
    partitions = csv_parts.plan(run)
    csv_parts.step("scale", run, partitions)
    csv_parts.step("classify", run, partitions[:2])
    scale, classify = run_progress(_step_ids(csv_parts.spec), run, csv_parts.env)
    assert (scale.rows_done, scale.rows_total) == (150, 150)
    assert classify.partitions_done == 2
    assert 0 < classify.rows_done < 150
    assert classify.text().endswith(f"of 150 rows done (2 of {len(partitions)} partitions)")


def test_progress_of_a_run_not_yet_planned_is_empty(csv_parts: Parts) -> None:
    assert (
        run_progress(
            _step_ids(csv_parts.spec), RunInfo("parts__infer", "manual__later"), csv_parts.env
        )
        == []
    )


def _step_ids(spec: ModelSpec) -> list[str]:
    return [step.id for step in spec.steps]
