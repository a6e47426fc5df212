"""Every task reports what it read and wrote to Airflow's real OpenLineage provider.

The provider, with its file transport, listens to real ``dag.test()`` runs of a model that has
every kind of task (training steps, gate, publish, inference, evaluation) and a run that fails
after reading its table; the events it wrote are checked for their datasets and facets, and
validated against the OpenLineage specification's JSON schemas, as the OpenLineage client's
classes generated from them describe them (``tests/openlineage_schemas.py``).
Airflow switches the provider's listener on at import, so the runs happen in a process of their
own (``tests/integration/lineage_runner.py``), on a metadata DB of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import s3fs
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from model_steps.airflow.lineage import MODEL_VERSION_FACET, facet_schema
from tests.conftest import DATA, EXAMPLES, REPO
from tests.integration.lineage_runner import MARK
from tests.openlineage_schemas import client_schemas

pytestmark = pytest.mark.integration

MODEL = "lineage_iris"
S3_TABLES = "s3://model-steps-e2e/data/lineage"
RUN_SECONDS = 300
INIT_DB = (
    "from airflow.utils import db; db.initdb()\n"
    "from airflow.dag_processing.bundles.manager import DagBundlesManager\n"
    "DagBundlesManager().sync_bundles_to_db()"
)
IRIS_COLUMNS = [
    ("sepal_length", "float64"),
    ("sepal_width", "float64"),
    ("petal_length", "float64"),
    ("petal_width", "float64"),
]


@dataclass
class Emitted:
    """What one process of runs did, and the OpenLineage events the provider wrote."""

    runs: list[dict[str, Any]]
    imported: list[str]
    events: list[dict[str, Any]]

    def event(
        self, task: str, kind: str, dag: str = "train", nth: int = 0, model: str = MODEL
    ) -> dict[str, Any]:
        """The ``nth`` event of ``kind`` (START, COMPLETE, FAIL) for one task of a model."""
        job = f"{model}__{dag}.{task}"
        found = [e for e in self.events if e["job"]["name"] == job and e["eventType"] == kind]
        assert len(found) > nth, f"no {kind} event #{nth} for {job}"
        return found[nth]


def lineage_folder(root: Path, s3: bool = False) -> Path:
    """A DAGs folder with the loader, the lineage model and its step code (and the S3 model)."""
    folder = root / "dags"
    shutil.copytree(DATA / "lineage" / "dags", folder)
    shutil.copy(EXAMPLES / "model_steps_loader.py", folder)
    if s3:
        shutil.copy(DATA / "lineage" / "s3" / "lineage_s3.yaml", folder)
    return folder


def run_dags(folder: Path, runs: list[str], env: dict[str, str], *flags: str) -> Emitted:
    """Run DAGs with dag.test() in a fresh interpreter (see ``lineage_runner``)."""
    process = subprocess.run(
        [sys.executable, "-m", "tests.integration.lineage_runner", str(folder), *flags, *runs],
        env={**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(folder), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-5000:]
    (line,) = [line for line in process.stdout.splitlines() if line.startswith(MARK)]
    result = json.loads(line.removeprefix(MARK))
    return Emitted(result["runs"], result["imported"], [])


@pytest.fixture(scope="module")
def own_airflow(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A metadata DB of the module's own: its DAGs and runs never show in the session's."""
    home = tmp_path_factory.mktemp("lineage-airflow")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    made = subprocess.run(
        [sys.executable, "-c", INIT_DB],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert made.returncode == 0, made.stderr[-5000:]
    return env


@pytest.fixture(scope="module")
def emitted(
    own_airflow: dict[str, str],
    example_data: Path,
    s3_models: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Emitted:
    """Train, infer, evaluate, then a training run that fails, with the provider listening.

    The S3 model trains and infers too, on tables in the session's bucket.
    """
    s3 = s3fs.S3FileSystem(**s3_models["storage_options"])
    for name in ("train.csv", "score.csv"):
        s3.put_file(str(example_data / "iris" / name), f"{S3_TABLES}/{name}")
    root = tmp_path_factory.mktemp("lineage")
    events = root / "events.jsonl"
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    env = {
        **own_airflow,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "model-steps-tests",
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    }
    runs = [
        "lineage_s3__train",
        "lineage_s3__infer",
        f"{MODEL}__train",
        f"{MODEL}__infer",
        f"{MODEL}__evaluate",
        f'{MODEL}__train={{"fail": true}}',
    ]
    done = run_dags(lineage_folder(root, s3=True), runs, env)
    done.events = [json.loads(line) for line in events.read_text().splitlines()]
    return done


def datasets(event: dict[str, Any], side: str) -> dict[tuple[str, str], dict[str, Any]]:
    """An event's inputs or outputs by (namespace, name)."""
    return {(d["namespace"], d["name"]): d for d in event[side]}


def schema_of(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["name"], f["type"]) for f in dataset["facets"]["schema"]["fields"]]


def local(path: Path) -> tuple[str, str]:
    """A local file's namespace and name, as OpenLineage's naming conventions spell them."""
    return "file", str(path)


def store() -> tuple[str, str]:
    return local(Path(os.environ["MODEL_STEPS_ASSETS_ROOT"]) / MODEL)


def table(name: str) -> tuple[str, str]:
    return local(Path(os.environ["MODEL_STEPS_DATA_ROOT"]) / "iris" / name)


def test_the_runs_behave_as_without_lineage(emitted: Emitted) -> None:
    assert [(run["dag_id"], run["state"]) for run in emitted.runs] == [
        ("lineage_s3__train", "success"),
        ("lineage_s3__infer", "success"),
        (f"{MODEL}__train", "success"),
        (f"{MODEL}__infer", "success"),
        (f"{MODEL}__evaluate", "success"),
        (f"{MODEL}__train", "failed"),
    ]


def test_a_training_step_reports_the_table_it_read_with_the_columns_it_read(
    emitted: Emitted,
) -> None:
    event = emitted.event("check_rows", "COMPLETE")
    read = datasets(event, "inputs")[table("train.csv")]
    assert schema_of(read) == [*IRIS_COLUMNS, ("species", "str")]
    assert read["inputFacets"]["inputStatistics"]["rowCount"] == 150
    assert event["outputs"] == []


def test_a_task_announces_the_tables_it_will_read_when_it_starts(emitted: Emitted) -> None:
    event = emitted.event("check_rows", "START")
    assert list(datasets(event, "inputs")) == [table("train.csv")]


def test_the_gate_reports_the_candidate_version_with_its_metrics_and_decision(
    emitted: Emitted,
) -> None:
    event = emitted.event("gate", "COMPLETE")
    (model,) = event["outputs"]
    assert (model["namespace"], model["name"]) == store()
    assert model["facets"]["version"]["datasetVersion"] == "1"
    facet = model["facets"][MODEL_VERSION_FACET]
    assert facet["decision"] == "accepted"
    assert facet["metrics"]["test"]["accuracy"] > 0.8
    assert set(facet["metrics"]["test"]) == {"accuracy", "f1_macro"}


def test_publishing_reports_the_live_version_and_the_table_it_was_trained_on(
    emitted: Emitted,
) -> None:
    event = emitted.event("publish", "COMPLETE")
    (model,) = event["outputs"]
    facet = model["facets"][MODEL_VERSION_FACET]
    assert (model["namespace"], model["name"]) == store()
    assert (facet["model"], facet["version"], facet["decision"]) == (MODEL, 1, "live")
    assert facet["manifest"].endswith(f"/{MODEL}/versions/1/manifest.json")
    assert set(facet["metrics"]) == {"train", "test"}
    assert list(datasets(event, "inputs")) == [table("train.csv")]


def test_inference_reports_the_model_version_it_predicted_with(emitted: Emitted) -> None:
    for task in ("check_rows", "scale", "classify"):
        model = datasets(emitted.event(task, "COMPLETE", "infer"), "inputs")[store()]
        assert model["facets"]["version"]["datasetVersion"] == "1", task
        assert model["facets"][MODEL_VERSION_FACET]["metrics"]["test"]["accuracy"] > 0.8


def test_inference_reports_the_table_it_scored_with_its_columns(emitted: Emitted) -> None:
    read = datasets(emitted.event("check_rows", "COMPLETE", "infer"), "inputs")[table("score.csv")]
    assert schema_of(read) == IRIS_COLUMNS


def test_inference_reports_the_predictions_it_wrote_with_their_columns(emitted: Emitted) -> None:
    event = emitted.event("output", "COMPLETE", "infer")
    (written,) = event["outputs"]
    folder = Path(os.environ["MODEL_STEPS_DATA_ROOT"]) / MODEL / "predictions"
    assert written["namespace"] == "file"
    assert Path(written["name"]).parent == folder
    assert Path(written["name"]).exists()
    assert schema_of(written) == [("prediction", "str")]
    assert written["outputFacets"]["outputStatistics"]["rowCount"] == 30


def test_evaluation_reports_the_table_and_version_it_scored_and_the_record_it_kept(
    emitted: Emitted,
) -> None:
    event = emitted.event("evaluate", "COMPLETE", "evaluate")
    inputs = datasets(event, "inputs")
    assert schema_of(inputs[table("train.csv")]) == [*IRIS_COLUMNS, ("species", "str")]
    assert inputs[store()]["facets"]["version"]["datasetVersion"] == "1"
    (record,) = event["outputs"]
    assert Path(record["name"]).is_file()
    assert Path(record["name"]).is_relative_to(Path(store()[1]))


def test_a_failed_task_reports_the_table_it_had_read(emitted: Emitted) -> None:
    event = emitted.event("check_rows", "FAIL")
    read = datasets(event, "inputs")[table("train.csv")]
    assert schema_of(read) == [*IRIS_COLUMNS, ("species", "str")]
    assert "failed on purpose" in event["run"]["facets"]["errorMessage"]["message"]


def test_tables_and_stores_on_s3_are_named_by_bucket_and_key(emitted: Emitted) -> None:
    train = emitted.event("classify", "COMPLETE", model="lineage_s3")
    assert list(datasets(train, "inputs")) == [("s3://model-steps-e2e", "data/lineage/train.csv")]
    assert schema_of(train["inputs"][0]) == [*IRIS_COLUMNS, ("species", "str")]
    publish = emitted.event("publish", "COMPLETE", model="lineage_s3")
    assert list(datasets(publish, "outputs")) == [("s3://model-steps-e2e", "models/lineage_s3")]
    infer = emitted.event("output", "COMPLETE", "infer", model="lineage_s3")
    (written,) = infer["outputs"]
    assert written["namespace"] == "s3://model-steps-e2e"
    assert written["name"].startswith("data/lineage/predictions/")
    assert (
        datasets(infer, "inputs")[("s3://model-steps-e2e", "models/lineage_s3")]["facets"][
            "version"
        ]["datasetVersion"]
        == "1"
    )


# -- the events against the OpenLineage specification ------------------------------------------


def spec_registry() -> Registry:
    """The specification's schemas (and our facet's), by their ``$id``: nothing is downloaded."""
    documents = [*client_schemas(), facet_schema()]
    return Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in documents
    )


def facets_in(event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every facet of an event (run, job, datasets, input and output facets), with its key."""
    groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for dataset in event.get("inputs", []) + event.get("outputs", []):
        for key in ("facets", "inputFacets", "outputFacets"):
            groups.append(dataset.get(key, {}))
    for group in groups:
        yield from group.items()


def check(document: dict[str, Any], schema_url: str, registry: Registry) -> list[str]:
    validator = Draft202012Validator(
        {"$ref": schema_url}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [
        f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)
    ]


def test_every_event_is_valid_against_the_openlineage_specification(emitted: Emitted) -> None:
    registry = spec_registry()
    assert len(emitted.events) >= 25
    for event in emitted.events:
        assert check(event, event["schemaURL"], registry) == [], event["job"]["name"]


def test_every_facet_is_valid_against_the_schema_it_names(emitted: Emitted) -> None:
    registry = spec_registry()
    checked = set()
    for event in emitted.events:
        for key, facet in facets_in(event):
            assert check(facet, facet["_schemaURL"], registry) == [], (event["job"]["name"], key)
            checked.add(key)
    assert {"schema", "version", MODEL_VERSION_FACET, "inputStatistics"} <= checked


# -- without the provider ----------------------------------------------------------------------


def test_without_openlineage_installed_the_dags_run_as_before(
    own_airflow: dict[str, str], example_data: Path, tmp_path: Path
) -> None:
    done = run_dags(
        lineage_folder(tmp_path),
        [f"{MODEL}__train", f"{MODEL}__infer"],
        own_airflow,
        "--without-openlineage",
    )
    assert [run["state"] for run in done.runs] == ["success", "success"]
    assert done.imported == []


def test_with_the_provider_not_configured_our_lineage_code_is_never_imported(
    own_airflow: dict[str, str], example_data: Path, tmp_path: Path
) -> None:
    done = run_dags(lineage_folder(tmp_path), [f"{MODEL}__train", f"{MODEL}__infer"], own_airflow)
    assert [run["state"] for run in done.runs] == ["success", "success"]
    assert "model_steps.airflow.lineage" not in done.imported
