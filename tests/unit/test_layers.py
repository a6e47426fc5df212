"""The package's layers: each imports only the layers below it, and only ``airflow/`` Airflow.

The map of docs/explanation/design.md, read from the source: every import of every module
counts, including those inside functions and under ``TYPE_CHECKING``, since a lazy import is
still a dependency. A second set of checks imports modules in a fresh interpreter to prove what
they pull in at import time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "plugin" / "model_steps"

LAYERS = {
    "errors": 0,
    "settings": 0,
    "libraries": 0,
    "terminal": 0,
    "definition": 1,
    "store": 2,
    "runtime": 3,
    "serving": 4,
    "handler": 4,
    "airflow": 5,
    "cli": 6,
    "examples": 6,
}
"""Rank of each top-level module or subpackage of ``model_steps``: a module may import its own
rank and lower ones."""
AIRFLOW_FREE = ("definition", "store", "runtime", "serving")
HEAVY = ("airflow", "sklearn", "pandas", "boto3", "botocore", "s3fs", "numpy")


def _part(module: str) -> str:
    """The layer a ``model_steps...`` module belongs to (its first component below the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: use absolute imports"
            module = str(node.module)
            if module == "model_steps":  # ``from model_steps import store``
                yield from ((node.lineno, f"model_steps.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, module


def layer_violations(module: str, source: str) -> list[str]:
    """Every import in ``source`` (the code of ``module``) that breaks the layering."""
    own = _part(module)
    found = []
    for line, imported in _imports(ast.parse(source)):
        top = imported.split(".")[0]
        if top == "airflow" and own in AIRFLOW_FREE:
            found.append(f"{module}:{line} imports Airflow ({imported})")
        if top != "model_steps" or not _part(imported):
            continue
        target = _part(imported)
        if target not in LAYERS:
            found.append(f"{module}:{line} imports {imported}, which has no layer in LAYERS")
        elif LAYERS[target] > LAYERS.get(own, 0):
            found.append(f"{module}:{line} imports {imported}, a layer above {own or module}")
    return found


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = [p for p in relative.parts if p != "__init__"]
        yield ".".join(parts), path


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [name for name, _ in _modules() if _part(name) and _part(name) not in LAYERS]
    assert orphans == []


def test_no_module_imports_a_layer_above_it_or_airflow_outside_the_airflow_layer() -> None:
    violations = [v for name, path in _modules() for v in layer_violations(name, path.read_text())]
    assert violations == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("model_steps.store.cards", "from model_steps.runtime.train import train_step", "above"),
        (
            "model_steps.definition.schema",
            "def f():\n    import model_steps.serving.handler",
            "above",
        ),
        ("model_steps.serving.handler", "from airflow.sdk import DAG", "Airflow"),
        ("model_steps.runtime.train", "from model_steps import airflow", "above"),
        ("model_steps.settings", "from model_steps.definition import loader", "above"),
    ],
)
def test_the_layer_check_catches_an_upward_import(module: str, source: str, expected: str) -> None:
    [violation] = layer_violations(module, source)
    assert expected in violation


@pytest.mark.parametrize(
    "module",
    [
        "model_steps.definition.schema",
        "model_steps.definition.loader",
        "model_steps.airflow.plan",
        "model_steps.cli",
        "model_steps.runtime.train",
        "model_steps.runtime.infer",
        "model_steps.runtime.publish",
        "model_steps.store.model_store",
        "model_steps.serving",
        "model_steps.handler",
        "model_steps.serving.server",
        "model_steps.serving.memory",
        "model_steps.airflow.api_models",
    ],
)
def test_module_imports_neither_airflow_nor_scientific_libraries(module: str) -> None:
    code = f"import sys, {module}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_parsing_dags_loads_no_task_runtime() -> None:
    """Airflow parses the DAGs folder constantly; the store and step libraries wait for a task."""
    runtime = (
        "model_steps.runtime.train",
        "model_steps.runtime.steps",
        "model_steps.store.model_store",
        "pandas",
        "sklearn",
    )
    code = (
        "import sys, model_steps.airflow.dags\n"
        f"print(sorted(m for m in {runtime!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
