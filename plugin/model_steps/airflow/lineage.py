"""What a task read and wrote, as OpenLineage datasets, for Airflow's OpenLineage provider.

The provider asks each operator for its lineage through ``get_openlineage_facets_on_start``,
``_on_complete`` and ``_on_failure``; :class:`~model_steps.airflow.operators.ModelStepOperator`
answers with the functions here. This module is imported only by those methods, and only the
provider calls them, so a deployment without the provider never imports it (nor OpenLineage).

Datasets are named as OpenLineage's naming conventions say: a local file is namespace ``file``
and its absolute path, an S3 object ``s3://<bucket>`` and its key (other fsspec URLs
``<scheme>://<host>`` and their path). A table read or written carries a schema facet of the
columns the task actually read or wrote (name and pandas dtype) and its row count. A model's
version is its store folder, with the version in the standard ``version`` facet and the
version's metrics, manifest and gate decision in :class:`ModelVersionDatasetFacet`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import attr
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    DatasetFacet,
    dataset_version_dataset,
    input_statistics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.naming.dataset import GCS, S3, LocalFileSystem

from model_steps.errors import ModelStepsError
from model_steps.runtime.touched import TableUse, Touched

__all__ = [
    "FACET_SCHEMA",
    "MODEL_VERSION_FACET",
    "Lineage",
    "ModelVersionDatasetFacet",
    "TaskFacts",
    "dataset_name",
    "facet_schema",
    "lineage_on_complete",
    "lineage_on_failure",
    "lineage_on_start",
]

log = logging.getLogger(__name__)

Lineage = OperatorLineage[Any, Any]
"""What the provider's operator methods return: inputs, outputs, run and job facets."""

MODEL_VERSION_FACET = "modelStepsVersion"
"""The key of :class:`ModelVersionDatasetFacet` in a dataset's facets (custom facets carry
their producer's prefix, so they never clash with the standard ones)."""
FACET_SCHEMA = "urn:airflow-model-steps:openlineage:ModelVersionDatasetFacet:1-0-0"
"""``$id`` of the facet's JSON schema, which ships in this package
(``model_steps/airflow/ModelVersionDatasetFacet.json``), so a consumer resolves it offline."""


@attr.define
class ModelVersionDatasetFacet(DatasetFacet):
    """A model version kept in a model store: its number, metrics, manifest and decision."""

    model: str
    version: int
    manifest: str
    metrics: dict[str, dict[str, float]] = attr.field(factory=dict)
    """Each scored part (``train``, ``test``, ``evaluation``) to its metrics."""
    decision: str | None = attr.field(default=None)
    """The gate's outcome for a candidate (``accepted``, ``refused``, ``pending``), or
    ``live`` once publishing made it the live version."""
    reason: str | None = attr.field(default=None)

    _additional_skip_redact: ClassVar[list[str]] = ["model", "version", "manifest", "metrics"]

    @staticmethod
    def _get_schema() -> str:
        return f"{FACET_SCHEMA}#/$defs/ModelVersionDatasetFacet"


def facet_schema() -> dict[str, Any]:
    """The facet's JSON schema, as shipped beside this module."""
    text = resources.files("model_steps.airflow").joinpath("ModelVersionDatasetFacet.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


@dataclass(frozen=True)
class TaskFacts:
    """What one task of a model is about to do, or did: the operator's side of lineage."""

    action: str
    model: str
    store_url: str
    """The model's store folder (``<assets.root>/<directory>``): the model's dataset."""
    inputs: Mapping[str, str]
    """The rendered data URLs the task reads (by phase)."""
    outputs: Mapping[str, str]
    """The rendered data URLs the task writes (by phase)."""
    touched: Touched | None = None
    """The tables it read and wrote, once it ran (also when it failed)."""
    result: Mapping[str, Any] | None = None
    """What the task returned (None until it succeeded)."""
    manifests: Any = None
    """Reads a version's manifest (``ModelStore.manifest``) for its metrics; None before run."""


def dataset_name(url: str) -> tuple[str, str]:
    """OpenLineage's namespace and name for a table or folder at an fsspec URL.

    Local files are ``file`` and their absolute path, S3 objects ``s3://<bucket>`` and their
    key, Google Cloud Storage ``gs://<bucket>``; another scheme's are ``<scheme>://<host>`` and
    its path.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("", "file", "local") and not (scheme == "file" and parts.netloc):
        path = url if not scheme else parts.path
        local = LocalFileSystem(path=str(Path(path).absolute()))
        return local.get_namespace(), local.get_name()
    key = parts.path.lstrip("/")
    if scheme in ("s3", "s3a", "s3n") and key:
        s3 = S3(bucket_name=parts.netloc, object_key=key)
        return s3.get_namespace(), s3.get_name()
    if scheme in ("gs", "gcs") and key:
        gcs = GCS(bucket_name=parts.netloc, object_key=key)
        return gcs.get_namespace(), gcs.get_name()
    return f"{scheme}://{parts.netloc}", parts.path or "/"


def _schema(table: TableUse) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=name, type=dtype)
            for name, dtype in table.columns
        ]
    )


def _read(table: TableUse) -> InputDataset:
    namespace, name = dataset_name(table.url)
    return InputDataset(
        namespace=namespace,
        name=name,
        facets={"schema": _schema(table)},
        inputFacets={
            "inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                rowCount=table.rows, fileCount=1
            )
        },
    )


def _written(table: TableUse) -> OutputDataset:
    namespace, name = dataset_name(table.url)
    statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=table.rows, size=table.size, fileCount=1
    )
    return OutputDataset(
        namespace=namespace,
        name=name,
        facets={"schema": _schema(table)},
        outputFacets={"outputStatistics": statistics},
    )


def _manifest(facts: TaskFacts, version: int) -> Any:
    """The version's manifest, or None when it cannot be read (lineage never fails a task)."""
    if facts.manifests is None:
        return None
    try:
        return facts.manifests(version)
    except ModelStepsError as error:
        log.warning("lineage reports version %d without its manifest: %s", version, error)
        return None


def _version_facets(
    facts: TaskFacts,
    version: int,
    manifest: Any,
    decision: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The standard ``version`` facet and ours, with the version's metrics when readable."""
    return {
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version)),
        MODEL_VERSION_FACET: ModelVersionDatasetFacet(
            model=facts.model,
            version=version,
            manifest=f"{facts.store_url.rstrip('/')}/versions/{version}/manifest.json",
            metrics=dict(manifest.metrics) if manifest is not None else {},
            decision=decision,
            reason=reason,
        ),
    }


def _trained_on(manifest: Any) -> list[InputDataset]:
    """The tables a version was trained on, as its manifest recorded them (step by step)."""
    if manifest is None:
        return []
    urls = dict.fromkeys(url for step in manifest.steps for url in step.inputs.values())
    return [InputDataset(*dataset_name(url)) for url in urls]


def _model_input(facts: TaskFacts, version: int | None = None) -> InputDataset:
    """The model's store folder, at ``version`` when the task knows which one it used."""
    facets = {}
    if version is not None:
        facets = _version_facets(facts, version, _manifest(facts, version))
    return InputDataset(*dataset_name(facts.store_url), facets=facets)


def _model_output(
    facts: TaskFacts, version: int, manifest: Any, decision: str, reason: str = ""
) -> OutputDataset:
    """The model's store folder, with the version the task staged or made live."""
    facets = _version_facets(facts, version, manifest, decision, reason or None)
    return OutputDataset(*dataset_name(facts.store_url), facets=facets)


def _declared(urls: Mapping[str, str], kind: type[Any]) -> list[Any]:
    return [kind(*dataset_name(url)) for url in urls.values()]


USES_A_VERSION = frozenset({"partition", "infer", "output", "evaluate"})
"""Actions that work with one published version: the infer DAG's tasks and the evaluation."""


def lineage_on_start(facts: TaskFacts) -> Lineage:
    """What the task is about to read and write: its rendered URLs and its model's store."""
    inputs: list[InputDataset] = _declared(facts.inputs, InputDataset)
    outputs: list[OutputDataset] = _declared(facts.outputs, OutputDataset)
    if facts.action in USES_A_VERSION:
        inputs.append(_model_input(facts))
    elif facts.action in ("gate", "publish"):
        outputs.append(OutputDataset(*dataset_name(facts.store_url)))
    return OperatorLineage(inputs=inputs, outputs=outputs)


def _tables(touched: Touched | None) -> tuple[list[InputDataset], list[OutputDataset]]:
    if touched is None:
        return [], []
    return [_read(t) for t in touched.reads], [_written(t) for t in touched.writes]


def lineage_on_complete(facts: TaskFacts) -> Lineage:
    """What the task read and wrote: tables with the columns it used, and model versions.

    Training reports its tables; inference adds the version it predicted with (each of its
    tasks loads that version's step); evaluation the version it scored and the record it kept;
    the gate the candidate version it decided on, publishing the version it made live, both
    with the tables that version was trained on as inputs (its manifest records them), so a
    catalogue links each version to its training data.
    """
    inputs, outputs = _tables(facts.touched)
    result = facts.result or {}
    version = result.get("version")
    if facts.action in USES_A_VERSION and isinstance(version, int):
        inputs.append(_model_input(facts, version))
        if result.get("record"):
            outputs.append(OutputDataset(*dataset_name(str(result["record"]))))
    elif facts.action in ("gate", "publish") and isinstance(version, int):
        manifest = _manifest(facts, version)
        inputs.extend(_trained_on(manifest))
        if facts.action == "gate":
            decision, reason = str(result["outcome"]), str(result.get("reason", ""))
        else:
            decision, reason = ("live" if result.get("live") else "published"), ""
        outputs.append(_model_output(facts, version, manifest, decision, reason))
    return OperatorLineage(inputs=inputs, outputs=outputs)


def lineage_on_failure(facts: TaskFacts) -> Lineage:
    """What a failed task had read (and any table it finished writing) before it failed."""
    inputs, outputs = _tables(facts.touched)
    return OperatorLineage(inputs=inputs, outputs=outputs)
