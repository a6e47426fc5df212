"""What a deployment sets once for every model: the default connection, data on S3, and which
version each inference used."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import s3fs

from model_steps.cli import main
from model_steps.definition.loader import load_and_validate
from model_steps.runtime.context import RunInfo, environment
from model_steps.runtime.partitioned import infer_step
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from model_steps.settings import load_settings
from model_steps.store.model_store import ModelStore
from tests.s3 import create_bucket, storage_options

pytestmark = pytest.mark.integration

MODEL = """\
apiVersion: model-steps/v1
kind: Model
name: versioned
assets: {{root: "{root}"}}
steps:
  - id: classify
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      init: {{C: 1.0, max_iter: 500}}
      input:
        train: {{url: "{data}/iris/train.csv"}}
        infer: {{url: "{data}/iris/score.csv"}}
      output:
        infer: {{url: "{data}/predictions/{{{{ run_id }}}}.csv"}}
      training: {{target: species}}
"""


def test_example_data_on_an_s3_root_lands_in_the_bucket_through_the_default_connection(
    s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = create_bucket(s3_server)
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": s3_server, "region_name": "us-east-1"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_DEPLOYMENT_S3", json.dumps(connection))
    monkeypatch.setenv("MODEL_STEPS_CONN_ID", "deployment_s3")
    monkeypatch.chdir(tmp_path)
    assert main(["example-data", f"s3://{bucket}/data"]) == 0
    fs = s3fs.S3FileSystem(**storage_options(s3_server))
    assert sorted(fs.ls(f"{bucket}/data/iris")) == [
        f"{bucket}/data/iris/score.csv",
        f"{bucket}/data/iris/train.csv",
    ]
    assert list(tmp_path.iterdir()) == []  # no local folder named "s3:"


def test_an_infer_run_uses_the_version_it_was_given_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("MODEL_STEPS_ALLOWED_DATA", str(data))
    main(["example-data", str(data)])
    definition = tmp_path / "versioned.yaml"
    definition.write_text(MODEL.format(root=tmp_path / "assets", data=data))
    (loaded,) = load_and_validate([definition], {}).models
    spec = loaded.spec
    env = environment(spec, load_settings(), {})
    step = spec.steps[0]
    for number in (1, 2):
        run = RunInfo("versioned__train", f"manual__{number}")
        train_step(spec, "classify", run, env, Rendered.templates(step, "train"))
        assert publish(spec, run, env)["version"] == number

    outputs = {}
    for run_id, asked in (("asset_triggered__a", 1), ("manual__b", None)):
        run = RunInfo("versioned__infer", run_id, version=asked)
        rendered = Rendered.templates(step, "infer")
        output = rendered.outputs["infer"].replace("{{ run_id }}", run_id)
        infer_step(
            spec, "classify", run, env, Rendered(rendered.init, rendered.inputs, {"infer": output})
        )
        outputs[run_id] = output

    store: ModelStore = env.store
    first, second = store.inference("asset_triggered__a"), store.inference("manual__b")
    assert first is not None and second is not None
    assert (first.version, second.version) == (1, 2)  # the event's version, else the pointer's
    assert first.manifest.endswith("/versions/1/manifest.json")
    assert first.output == outputs["asset_triggered__a"]
    assert len(pd.read_csv(first.output)) == first.rows == 30
