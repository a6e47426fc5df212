"""What a stored version may make a loader do: the manifest never picks a weaker loader.

A model is trained and published with the train DAG's task functions, on local disk and on the
session's S3 server; then its manifest is edited as someone who can write the store would, and
the infer task and a handler's pipeline (built from the same manifest) both refuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from model_steps.definition.loader import load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.errors import PermanentError, SerializerRefusedError
from model_steps.runtime.context import Environment, RunInfo, environment
from model_steps.runtime.infer import infer_frame, version_pipeline
from model_steps.runtime.partitioned import infer_step
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from model_steps.settings import load_settings
from model_steps.store.manifest import Manifest
from tests.assets import touching_pickle
from tests.lab import write_iris

MODEL = """\
apiVersion: model-steps/v1
kind: Model
name: loaded
assets: {{root: "{root}"}}
steps:
  - id: {step}
    has_assets: true
    assets_identifier: {identifier}
{assets_root}    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      init: {{C: 1.0, max_iter: 500}}
      methods: {{predict: {predict}}}
      input:
        train: {{url: "{data}"}}
        infer: {{url: "{data}"}}
      output:
        infer: {{url: "{out}/{{{{ run_id }}}}.csv"}}
      training: {{target: species}}
"""


class Model:
    """One definition file on a store; rewriting the file changes the definition, not the store."""

    def __init__(self, folder: Path, root: str, options: dict[str, Any]) -> None:
        self.folder, self.root, self.options = folder, root, options
        # data lives where the deployment allows it: under the session's data root
        self.tables = Path(os.environ["MODEL_STEPS_DATA_ROOT"]) / "loading" / folder.name
        self.data = write_iris(self.tables / "data")
        self.spec = self.define()

    def define(
        self,
        step: str = "classify",
        identifier: str = "model.skops",
        predict: str = "predict",
        assets_root: str | None = None,
    ) -> ModelSpec:
        path = self.folder / "loaded.yaml"
        path.write_text(
            MODEL.format(
                root=self.root,
                step=step,
                identifier=identifier,
                predict=predict,
                assets_root=f'    assets_root: "{assets_root}"\n' if assets_root else "",
                data=self.data,
                out=self.tables / "out",
            )
        )
        (loaded,) = load_and_validate([path], {}).models
        self.spec = loaded.spec
        return loaded.spec

    @property
    def env(self) -> Environment:
        return environment(self.spec, load_settings(), self.options)

    def train(self) -> int:
        run = RunInfo("loaded__train", "manual__train")
        step = self.spec.steps[0]
        train_step(self.spec, step.id, run, self.env, Rendered.templates(step, "train"))
        version: int = publish(self.spec, run, self.env)["version"]
        return version

    def infer(self, run_id: str) -> pd.DataFrame:
        step = self.spec.steps[0]
        rendered = Rendered.templates(step, "infer")
        output = rendered.outputs["infer"].replace("{{ run_id }}", run_id)
        run = RunInfo("loaded__infer", run_id)
        infer_step(
            self.spec,
            step.id,
            run,
            self.env,
            Rendered(rendered.init, rendered.inputs, {"infer": output}),
        )
        return pd.read_csv(output)

    def handler_predictions(self, version: int) -> pd.DataFrame:
        """What a handler serving ``version`` with this definition predicts for the data."""
        pipeline = version_pipeline(self.env.store.manifest(version), self.env, self.spec)
        features = pd.read_csv(self.data).drop(columns="species")
        return infer_frame(pipeline, features).reset_index(drop=True)

    def rewrite_manifest(self, version: int, change: Callable[[dict[str, Any]], None]) -> None:
        """Edit a published manifest behind the store's back, as a writer of the store could."""
        store = self.env.store
        path = store.path("versions", str(version), "manifest.json")
        document = json.loads(store.fs.cat_file(path))
        change(document)
        store.fs.pipe_file(path, json.dumps(document).encode())

    def replace_asset(self, version: int, data: bytes, serializer: str, identifier: str) -> None:
        """Put ``data`` where the version's asset is and record it as ``serializer`` wrote it."""
        store = self.env.store
        manifest = store.manifest(version)
        record = manifest.asset(manifest.steps[0].step_id)
        assert record is not None
        store.write_bytes(record.url, data)

        def forge(document: dict[str, Any]) -> None:
            step = document["steps"][0]
            step["asset"].update(
                size=len(data), sha256=hashlib.sha256(data).hexdigest(), serializer=serializer
            )
            step["definition"]["assets_identifier"] = identifier
            step["definition"]["parameters"].pop("serializer", None)

        self.rewrite_manifest(version, forge)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def model(request: pytest.FixtureRequest, tmp_path: Path) -> Model:
    """The model defined in a fresh folder, its store on local disk or on the S3 server."""
    if request.param == "local":
        return Model(tmp_path, str(tmp_path / "assets"), {})
    bucket = request.getfixturevalue("s3_bucket")
    options = request.getfixturevalue("s3_storage_options")
    return Model(tmp_path, f"s3://{bucket}/models", options)


def test_a_manifest_cannot_make_a_skops_step_load_as_a_pickle(model: Model, tmp_path: Path) -> None:
    version = model.train()
    marker = tmp_path / "ran"
    model.replace_asset(version, touching_pickle(marker), "joblib", "model.joblib")
    for load in (lambda: model.infer("manual__infer"), lambda: model.handler_predictions(version)):
        with pytest.raises(SerializerRefusedError, match="never loaded with a weaker serializer"):
            load()
    assert not marker.exists()


def test_an_asset_whose_record_disagrees_with_its_step_is_not_loaded(model: Model) -> None:
    version = model.train()
    model.rewrite_manifest(version, lambda d: d["steps"][0]["asset"].update(serializer="joblib"))
    with pytest.raises(SerializerRefusedError, match="its asset says 'joblib'"):
        model.handler_predictions(version)


def test_a_version_saved_with_a_stronger_serializer_than_the_definition_still_loads(
    model: Model,
) -> None:
    model.train()  # skops
    model.define(identifier="model.joblib")
    assert len(model.infer("manual__infer")) == len(pd.read_csv(model.data))


def test_the_infer_task_predicts_with_the_steps_the_version_recorded(model: Model) -> None:
    """An edited definition changes new versions only: infer and a handler agree on the old one."""
    version = model.train()
    model.define(predict="predict_proba")
    inferred = model.infer("manual__infer")
    served = model.handler_predictions(version)
    assert list(inferred.columns) == list(served.columns) == ["prediction"]
    assert_frame_equal(inferred, served, check_dtype=False)


def test_an_infer_run_refuses_a_version_trained_with_other_steps(model: Model) -> None:
    model.train()
    model.define(step="predict_species")
    with pytest.raises(PermanentError, match=r"was trained with steps \['classify'\]"):
        model.infer("manual__infer")


def test_a_step_with_its_own_assets_root_is_published_and_inferred_there(model: Model) -> None:
    model.define(assets_root=f"{model.root}-steps")
    version = model.train()
    record = model.env.store.manifest(version).asset("classify")
    assert record is not None
    assert record.url.endswith(f"-steps/loaded/versions/{version}/classify/model.skops")
    assert len(model.infer("manual__infer")) == len(pd.read_csv(model.data))


def test_the_manifest_records_each_steps_serializer(model: Model) -> None:
    version = model.train()
    manifest: Manifest = model.env.store.manifest(version)
    record = manifest.asset("classify")
    assert record is not None and record.serializer == "skops"
    assert manifest.steps[0].definition is not None
    assert manifest.steps[0].definition["assets_identifier"] == "model.skops"
