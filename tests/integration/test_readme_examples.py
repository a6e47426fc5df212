"""The README's examples validate, and its training examples train and publish as written.

Full models (``apiVersion`` at the top) are validated as they are, step snippets as the last
step of a small model, each as ``model-steps validate`` checks it (the loader, then every name
resolved). The scikit-learn pipeline trains on its own ``s3://data/...`` URLs, on the session's
S3 server, and the xgboost and lightgbm steps train after a scaler, all through the runtime a
task runs (``render_step``, ``train_step``, ``publish``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from model_steps.cli import main
from model_steps.definition.loader import load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.examples import write_example_data
from model_steps.runtime.context import RunInfo, environment
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import render_step
from model_steps.runtime.train import train_step
from model_steps.settings import load_settings
from model_steps.store.model_store import open_store
from tests.conftest import REPO
from tests.s3 import create_bucket, storage_options

pytestmark = pytest.mark.integration

BLOCKS = re.findall(r"^```yaml\n(.*?)^```", (REPO / "README.md").read_text(), re.M | re.S)
MODELS = [block for block in BLOCKS if block.startswith("apiVersion:")]
SNIPPETS = [block for block in BLOCKS if block.startswith("  - id:")]
STEPS = {
    package: block
    for block in SNIPPETS
    if (package := yaml.safe_load(block)[0]["parameters"].get("package"))
}


def wrapped(step: str, name: str, data: str, target: str) -> str:
    """A step snippet as the last step of a model whose scaler reads ``data``."""
    return f"""apiVersion: model-steps/v1
kind: Model
name: {name}
steps:
  - id: scale
    has_assets: true
    assets_identifier: scaler.joblib
    parameters:
      package: sklearn.preprocessing
      class: StandardScaler
      input:
        train: {{url: "{data}"}}
      training:
        target: {target}
        split: {{test_size: 0.25, seed: 1}}
{step}"""


def load(text: str, path: Path) -> ModelSpec:
    path.write_text(text)
    catalog = load_and_validate([path], load_settings().environ)
    assert catalog.problems == (), catalog.problems
    return catalog.models[0].spec


def validates(text: str, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``model-steps validate`` accepts it: the loader, then every name resolved (in a child
    process, so the DAGs folder's modules are its own, not ones this session imported)."""
    path.write_text(text)
    status = main(["validate", str(path)])
    assert status == 0, capsys.readouterr()


def train(spec: ModelSpec, options: dict[str, Any]) -> int:
    run = RunInfo(
        f"{spec.name}__train",
        "manual__readme",
        params={name: p.default for name, p in spec.parameters.items()},
        run_after=datetime.now(UTC),
    )
    env = environment(spec, load_settings(), options)
    for step in spec.steps:
        train_step(spec, step.id, run, env, render_step(step, "train", run, env.places))
    version: int = publish(spec, run, env)["version"]
    return version


def test_the_readme_has_the_examples_this_module_checks() -> None:
    assert len(MODELS) >= 1
    assert set(STEPS) == {"xgboost", "lightgbm"}


@pytest.mark.parametrize("index", range(len(MODELS)))
def test_every_full_model_in_the_readme_validates(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    validates(MODELS[index], tmp_path / "model.yaml", capsys)


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_every_step_snippet_in_the_readme_validates(
    index: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The README's callable step names the DAGs folder's own code: a folder beside the file.
    (tmp_path / "model_code").mkdir()
    (tmp_path / "model_code" / "__init__.py").write_text("")
    (tmp_path / "model_code" / "features.py").write_text(
        "def add_interactions(data, pairs):\n    return data\n"
    )
    data = "s3://data/snippet/train.csv"  # an allowed data location, never read by validate
    validates(wrapped(SNIPPETS[index], "snippet", data, "y"), tmp_path / "snippet.yaml", capsys)


def test_the_readme_pipeline_trains_on_its_own_s3_urls(s3_server: str, tmp_path: Path) -> None:
    options = storage_options(s3_server)
    create_bucket(s3_server, "data")
    write_example_data("s3://data", options)
    spec = load(MODELS[0], tmp_path / "iris.yaml")
    assert spec.steps[0].parameters.input.train.url == "s3://data/iris/train.csv"
    # Renamed so its store is not the session's example iris store.
    spec = spec.model_copy(update={"name": "readme_iris"})
    version = train(spec, options)
    store = open_store(f"{spec.assets.root}/{spec.directory}", options)
    assert store.manifest(version).metrics["test"]["accuracy"] > 0.8


@pytest.mark.parametrize(
    ("package", "serializer"), [("xgboost", "xgboost"), ("lightgbm", "lightgbm")]
)
def test_the_readme_boosting_steps_train_in_their_own_formats(
    package: str, serializer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_STEPS_ALLOWED_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    if package == "xgboost":
        data, target = tmp_path / "data" / "cancer.csv", "target"
        load_breast_cancer(as_frame=True).frame.to_csv(data, index=False)
    else:
        target = "progression"
        write_example_data(tmp_path / "data")
        data = tmp_path / "data" / "diabetes" / "train.parquet"
    name = f"readme_{package}"
    spec = load(wrapped(STEPS[package], name, str(data), target), tmp_path / f"{name}.yaml")
    version = train(spec, {})
    store = open_store(f"{load_settings().assets_root}/{name}")
    assert store.manifest(version).asset("boost").serializer == serializer
