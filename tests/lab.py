"""A model definition on a store, trained and published like the train DAG's tasks, without Airflow.

One model serves the handler and server tests: a scaler and a logistic regression on iris,
trained with :func:`model_steps.runtime.train.train_step` and published with
:func:`~model_steps.runtime.publish.publish`, as the train DAG runs them. Tests vary it through
:func:`make_lab`'s parameters (name, status, store, a step of their own code) rather than with
templates of their own, so each shows only what it changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from model_steps.definition.data_locations import places_under
from model_steps.definition.loader import load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.examples import write_example_data
from model_steps.runtime.candidate import stage_candidate
from model_steps.runtime.context import Environment, RunInfo, environment
from model_steps.runtime.publish import publish
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.train import train_step
from model_steps.serving.handler import ModelHandler
from model_steps.settings import Settings, allow_list, load_settings
from model_steps.store.manifest import GateRecord
from model_steps.store.model_store import ModelStore, utc_now

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
IRIS = """\
apiVersion: model-steps/v1
kind: Model
name: {name}
status: {status}
assets: {{{conn_id}root: "{root}"}}
steps:
  - id: scale
    has_assets: true
    assets_identifier: scaler.joblib
    parameters:
      package: sklearn.preprocessing
      class: StandardScaler
      input:
        train: {{url: "{data}"}}
      training: {{target: species}}
{carry}{middle}  - id: classify
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      init: {{C: 1.0, max_iter: 500}}
      methods: {{predict: {predict}}}
"""
CLASSIFIER = """\
apiVersion: model-steps/v1
kind: Model
name: {name}
assets: {{root: "{root}"}}
{top}steps:
  - id: classify
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      init: {{max_iter: 500}}
      input: {{train: {{url: "{data}"}}}}
      training: {training}
      metrics: [accuracy]
"""
"""One logistic-regression step on iris: for task tests that need a trained version fast."""


def classifier(
    name: str, tmp_path: Path, data: Path, top: str = "", training: str = "{target: species}"
) -> str:
    """:data:`CLASSIFIER` storing under ``tmp_path/assets``; ``top`` adds top-level fields."""
    return CLASSIFIER.format(
        name=name, root=tmp_path / "assets", data=data, top=top, training=training
    )


def local_settings(tmp_path: Path) -> Settings:
    """The deployment's settings for an Airflow home and data root under ``tmp_path``."""
    return load_settings(
        {"AIRFLOW_HOME": str(tmp_path), "MODEL_STEPS_DATA_ROOT": str(tmp_path / "data")}
    )


CODE_STEP = """\
  - id: {id}
    parameters:
      callable: "{module}:{id}"
      init: {init}
"""


@dataclass(frozen=True)
class CodeStep:
    """A step between the scaler and the classifier that calls a function of the test's own.

    The function, named like the step, is written to ``module``.py beside the definition, where
    Airflow's DAGs folder would hold it. Python caches a module by its name for the whole
    session, so every test that writes code names its own module.
    """

    id: str
    module: str
    code: str
    init: str
    """The step's ``init``, as a YAML flow mapping."""


PAUSE_CODE = '''\
import time
import weakref


def pause(data, seconds):
    """Slow inference down, to observe what a handler does while a version loads."""
    time.sleep(seconds)
    return data
'''


def pause_step(module: str) -> CodeStep:
    """A step that sleeps ``seconds`` (none unless training says), written to ``module``."""
    return CodeStep("pause", module, PAUSE_CODE, "{seconds: 0.0}")


def write_iris(folder: Path) -> Path:
    """Iris with its species, written as the example models read it; returns its CSV."""
    write_example_data(folder)
    return folder / "iris" / "train.csv"


@dataclass
class Lab:
    """A model definition on a store, and training runs that publish its versions."""

    definition: Path
    spec: ModelSpec
    storage_options: dict[str, Any] = field(default_factory=dict)
    runs: int = 0

    @property
    def store(self) -> ModelStore:
        """The model's store, as the train DAG opens it."""
        return self._env().store

    def train(self, C: float = 1.0, with_std: bool = True, **steps_init: Mapping[str, Any]) -> int:
        """Train every step and publish; returns the new version.

        ``C`` (the logistic regression's) and ``with_std`` (the scaler's) make versions predict
        differently; ``steps_init`` changes other steps' init by step id (recorded rendered in
        the manifest, as Airflow renders init).
        """
        run, env = self._train_steps(
            {**steps_init, "classify": {"C": C}, "scale": {"with_std": with_std}}
        )
        version: int = publish(self.spec, run, env)["version"]
        return version

    def candidate(self, outcome: Literal["refused", "pending"], C: float = 1.0) -> int:
        """Train every step and stage a candidate the gate decided on (``refused`` or
        ``pending``), as a gated model's gate task does: a complete version, never live."""
        run, env = self._train_steps({"classify": {"C": C}})
        gate = GateRecord(
            outcome=outcome, reason=f"the test's gate said {outcome}", decided_at=utc_now()
        )
        return stage_candidate(self.spec, run, env, gate).version

    def _train_steps(self, changes: Mapping[str, Mapping[str, Any]]) -> tuple[RunInfo, Environment]:
        """Run every step's training for a new run, its init changed by step id."""
        self.runs += 1
        run = RunInfo(f"{self.spec.name}__train", f"manual__{self.runs}")
        env = self._env()
        for step in self.spec.steps:
            rendered = Rendered.templates(step, "train")
            init = {**rendered.init, **changes.get(step.id, {})}
            train_step(self.spec, step.id, run, env, Rendered(init, rendered.inputs))
        return run, env

    def handler(self, **options: Any) -> ModelHandler:
        """A handler built from the definition file, with short test-friendly waits."""
        options.setdefault("poll_interval", 0.05)
        options.setdefault("max_backoff", 0.4)
        return ModelHandler.from_definition(
            self.definition, storage_options=self.storage_options, **options
        )

    def _env(self) -> Environment:
        """The train DAG's environment; the definition's folder is importable, as in Airflow."""
        settings = load_settings()
        env = environment(self.spec, settings, self.storage_options)
        allow = allow_list(settings.environ, [settings.dags_folder, self.definition.parent])
        source = self.spec.steps[0].parameters.input
        assert source is not None and source.train is not None
        places = places_under(str(Path(source.train.url).parent), "the lab's training data")
        return replace(env, allow=allow, places=places)


def make_lab(
    folder: Path,
    data: Path,
    root: str | None = None,
    *,
    name: str = "iris",
    status: str = "deployed",
    predict: str = "predict",
    conn_id: str | None = None,
    step: CodeStep | None = None,
    storage_options: Mapping[str, Any] | None = None,
    carry: Sequence[str] = (),
) -> Lab:
    """Write ``folder/<name>.yaml`` training on the CSV ``data`` and load it.

    Versions go to ``root`` (``folder/assets`` unless given); ``conn_id`` names an Airflow
    connection for that store and ``storage_options`` are what the tasks open it with here;
    ``step`` adds a step of the test's own code; ``carry`` the columns the first step carries.
    """
    folder.mkdir(parents=True, exist_ok=True)
    middle = ""
    if step:
        (folder / f"{step.module}.py").write_text(step.code)
        middle = CODE_STEP.format(id=step.id, module=step.module, init=step.init)
    path = folder / f"{name}.yaml"
    text = IRIS.format(
        name=name,
        status=status,
        conn_id=f"conn_id: {conn_id}, " if conn_id else "",
        root=root or folder / "assets",
        data=data,
        predict=predict,
        middle=middle,
        carry=f"      carry: [{', '.join(carry)}]\n" if carry else "",
    )
    path.write_text(text)
    (loaded,) = load_and_validate([path], load_settings().environ).models
    return Lab(path, loaded.spec, dict(storage_options or {}))


def scores(data: Path) -> pd.DataFrame:
    """Rows to predict: iris without its species, in a mixed order."""
    return pd.read_csv(data).drop(columns="species").sample(30, random_state=3)


def expected_labels(
    data: Path, rows: pd.DataFrame, C: float = 1.0, with_std: bool = True
) -> list[str]:
    """What a plain scikit-learn pipeline trained the same way predicts."""
    return list(_plain_pipeline(data, C, with_std).predict(rows))


def expected_probabilities(
    data: Path, rows: pd.DataFrame, C: float = 1.0, with_std: bool = True
) -> Any:
    """Each row's probabilities of :data:`CLASSES` from a plain pipeline trained the same way."""
    return _plain_pipeline(data, C, with_std).predict_proba(rows)


def _plain_pipeline(data: Path, C: float, with_std: bool) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data)
    model = make_pipeline(StandardScaler(with_std=with_std), LogisticRegression(C=C, max_iter=500))
    model.fit(frame[FEATURES], frame["species"])
    return model


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` every few milliseconds until it holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        time.sleep(0.01)
