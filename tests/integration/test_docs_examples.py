"""Every snippet of the README and the docs site runs, by the conventions of docs/development.md.

YAML blocks are validated as ``model-steps validate`` checks them (the loader, then every name
resolved in a child process): whole models as written, step snippets as the last steps of a
small model, fields merged into an example of ``dags/``. The scikit-learn pipeline of the
how-to trains on its own ``s3://data/...`` URLs on the session's S3 server, and the xgboost and
lightgbm steps train after a scaler, through the runtime a task runs.

Console and Python blocks run page by page, in the order of the site's navigation, in one
project laid out as ``make run`` lays it out (``dags/`` copied from the repository,
``.airflow/`` with its own metadata DB and ``env`` file, ``.data/``), so the tutorial's trained
model is there for the how-to guides that follow, as it is for a reader.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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
from tests.conftest import EXAMPLES, REPO
from tests.docs_blocks import Block, Command, blocks, commands, pages, run_by, yaml_kind
from tests.s3 import create_bucket, free_port, storage_options

pytestmark = pytest.mark.integration

PAGES = pages()
BLOCKS = [block for page in PAGES for block in blocks(page) if block.not_run is None]
YAML = [
    block
    for block in BLOCKS
    if block.lang == "yaml"
    and (yaml_kind(block) in ("model", "steps") or not run_by(REPO / block.page))
]
RUNNABLE = {"console", "python"}
PAGES_TO_RUN = [
    page
    for page in PAGES
    if not run_by(page) and any(b.lang in RUNNABLE and b.not_run is None for b in blocks(page))
]
COMMAND_SECONDS = 600.0
SERVER_START_SECONDS = 60.0


def _slug(block: Block) -> str:
    return re.sub(r"\W+", "_", f"{block.page}_{block.line}").strip("_").lower()


def steps_model(steps: str, name: str, data: str, target: str) -> str:
    """Step snippets as the last steps of a model whose scaler reads ``data``.

    A snippet whose first step reads its own training data is the whole list of steps. The
    model declares the iris example's parameter ``C``, which the docs' templates use.
    """
    head = f"""apiVersion: model-steps/v1
kind: Model
name: {name}
parameters:
  C: {{default: 1.0, type: number, minimum: 0.0001}}
steps:
"""
    first = yaml.safe_load(steps)[0].get("parameters", {})
    if (first.get("input") or {}).get("train"):
        return head + steps
    return f"""{head}  - id: scale
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
{steps}"""


def fields_model(block: Block, name: str) -> str:
    """Top-level fields merged into the example a first comment names (``dags/iris.yaml``)."""
    named = re.match(r"\s*# (dags/\S+\.ya?ml)", block.text)
    base = yaml.safe_load((REPO / (named[1] if named else "dags/iris.yaml")).read_text())
    base.update(yaml.safe_load(block.text))
    base["name"] = name
    return yaml.safe_dump(base, sort_keys=False)


def as_model(block: Block) -> str:
    """The model file a YAML block stands for, named after where it is."""
    name = _slug(block)
    kind = yaml_kind(block)
    if kind == "model":
        return re.sub(r"^name: .*$", f"name: {name}", block.text, count=1, flags=re.M)
    if kind == "steps":
        return steps_model(block.text, name, "s3://data/snippet/train.csv", "y")
    assert kind == "fields", f"{block.where}: not a model, steps or fields"
    return fields_model(block, name)


@pytest.mark.parametrize("block", YAML, ids=lambda b: b.where)
def test_every_yaml_block_validates(
    block: Block, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The DAGs folder's own code, as in dags/: the callable, metric and feature functions.
    shutil.copytree(EXAMPLES / "model_code", tmp_path / "model_code")
    path = tmp_path / f"{_slug(block)}.yaml"
    path.write_text(as_model(block))
    status = main(["validate", str(path)])
    assert status == 0, f"{block.where}:\n{capsys.readouterr()}"


# -- training what the docs show ---------------------------------------------------------------

MODELS = [b for b in YAML if yaml_kind(b) == "model" and "s3://data/iris/train.csv" in b.text]
STEPS = {
    package: block
    for block in YAML
    if yaml_kind(block) == "steps"
    and (package := yaml.safe_load(block.text)[0]["parameters"].get("package"))
    in ("xgboost", "lightgbm")
}


def load(text: str, path: Path) -> ModelSpec:
    path.write_text(text)
    catalog = load_and_validate([path], load_settings().environ)
    assert catalog.problems == (), catalog.problems
    return catalog.models[0].spec


def train(spec: ModelSpec, options: dict[str, Any]) -> int:
    run = RunInfo(
        f"{spec.name}__train",
        "manual__docs",
        params={name: p.default for name, p in spec.parameters.items()},
        run_after=datetime.now(UTC),
    )
    env = environment(spec, load_settings(), options)
    for step in spec.steps:
        train_step(spec, step.id, run, env, render_step(step, "train", run, env.places))
    version: int = publish(spec, run, env)["version"]
    return version


def test_the_docs_have_the_examples_this_module_trains() -> None:
    assert len(MODELS) >= 1
    assert set(STEPS) == {"xgboost", "lightgbm"}


def test_the_pipeline_of_the_docs_trains_on_its_own_s3_urls(s3_server: str, tmp_path: Path) -> None:
    options = storage_options(s3_server)
    create_bucket(s3_server, "data")
    write_example_data("s3://data", options)
    spec = load(MODELS[0].text, tmp_path / "iris.yaml")
    assert spec.steps[0].parameters.input.train.url == "s3://data/iris/train.csv"
    # Renamed so its store is not the session's example iris store.
    spec = spec.model_copy(update={"name": "docs_iris"})
    version = train(spec, options)
    store = open_store(f"{spec.assets.root}/{spec.directory}", options)
    assert store.manifest(version).metrics["test"]["accuracy"] > 0.8


@pytest.mark.parametrize(
    ("package", "serializer"), [("xgboost", "xgboost"), ("lightgbm", "lightgbm")]
)
def test_the_boosting_steps_of_the_docs_train_in_their_own_formats(
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
    name = f"docs_{package}"
    spec = load(steps_model(STEPS[package].text, name, str(data), target), tmp_path / "m.yaml")
    version = train(spec, {})
    store = open_store(f"{load_settings().assets_root}/{name}")
    assert store.manifest(version).asset("boost").serializer == serializer


# -- the commands, in a project laid out like `make run`'s --------------------------------------


class Project:
    """A folder laid out as ``make run`` lays it out, and a shell environment for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        home, data = root / ".airflow", root / ".data"
        shutil.copytree(EXAMPLES, root / "dags", ignore=shutil.ignore_patterns("__pycache__"))
        home.mkdir()
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MODEL_STEPS_", "AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_"))
        }
        settings = {  # what the Makefile exports, for this folder
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "MODEL_STEPS_ASSETS_ROOT": str(data / "assets"),
            "MODEL_STEPS_DATA_ROOT": str(data / "data"),
        }
        (home / "env").write_text("".join(f"export {k}={v}\n" for k, v in settings.items()))
        self.env = {
            **keep,
            **settings,
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "NO_MKDOCS_2_WARNING": "1",
        }
        write_example_data(data / "data")  # as `make run` does before Airflow starts
        self.shell(["airflow", "db", "migrate"])

    def shell(self, argv: list[str], timeout: float = COMMAND_SECONDS) -> str:
        done = subprocess.run(
            argv,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("docs-project"))


class PageRun:
    """The state one page's commands share: carried commands, background servers, a port."""

    def __init__(self, project: Project, page: Path) -> None:
        self.project = project
        self.page = page
        self.carried: list[str] = []
        self.servers: list[subprocess.Popen[bytes]] = []
        self.port = str(free_port())

    def script(self, command: str) -> str:
        return " && ".join([*self.carried, command.replace("8000", self.port)])

    def run(self, block: Block, command: Command) -> None:
        where = f"{block.where}: $ {command.text}"
        if command.background:
            log = self.project.root / f"server-{len(self.servers)}.log"
            with log.open("wb") as out:
                self.servers.append(
                    subprocess.Popen(
                        ["bash", "-c", self.script(command.text[:-1].rstrip())],
                        cwd=self.project.root,
                        env=self.project.env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            return
        self._until_it_succeeds(where, command.text, command.expected)
        if command.carried:
            self.carried.append(command.text)

    def _until_it_succeeds(self, where: str, command: str, expected: tuple[str, ...] = ()) -> None:
        """Run it until it exits 0 and prints what the page shows.

        Once only, unless a server of the page is starting: then again until it answers.
        """
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            done = subprocess.run(
                ["bash", "-c", self.script(command)],
                cwd=self.project.root,
                env=self.project.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_SECONDS,
                check=False,
            )
            output = done.stdout + done.stderr
            problem = f"exit {done.returncode}" if done.returncode else _unseen(expected, output)
            if not problem:
                return
            if not self.servers or time.monotonic() > deadline:
                raise AssertionError(f"{where}: {problem}\n{output[-4000:]}")
            time.sleep(0.5)

    def run_python(self, block: Block) -> None:
        script = self.project.root / f"{_slug(block)}.py"
        script.write_text(block.text)
        self._until_it_succeeds(f"{block.where}: python", f"python {script.name}")

    def stop(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()


def _unseen(expected: tuple[str, ...], output: str) -> str | None:
    """The first line the page shows that no line of the output looks like, if any.

    ``...`` stands for any text and a run of spaces for any whitespace.
    """
    lines = [line.strip() for line in output.splitlines()]
    for shown in expected:
        pattern = r"\s+".join(
            ".*".join(re.escape(part) for part in word.split("...")) for word in shown.split()
        )
        if not any(re.fullmatch(pattern, line) for line in lines):
            return f"no line of its output looks like {shown!r}"
    return None


@pytest.fixture
def page_run(project: Project, request: pytest.FixtureRequest) -> Iterator[PageRun]:
    run = PageRun(project, request.param)
    yield run
    run.stop()


@pytest.mark.parametrize(
    "page_run", PAGES_TO_RUN, ids=[str(p.relative_to(REPO)) for p in PAGES_TO_RUN], indirect=True
)
def test_the_commands_and_python_of_each_page_run_in_the_order_a_reader_follows(
    page_run: PageRun,
) -> None:
    for block in blocks(page_run.page):
        if block.not_run is not None:
            continue
        if block.lang == "yaml" and block.title:
            target = page_run.project.root / block.title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text)
        elif block.lang == "console":
            for command in commands(block):
                page_run.run(block, command)
        elif block.lang == "python":
            page_run.run_python(block)


def test_the_tutorial_runs_first_and_every_command_page_runs() -> None:
    assert PAGES_TO_RUN[0] == REPO / "docs" / "tutorial" / "first-model.md"
    assert REPO / "README.md" in PAGES_TO_RUN
