"""The limits page and the threat-model section say what the code does, and their snippets run."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from model_steps.cli import _parser
from model_steps.definition.loader import load_and_validate
from model_steps.definition.owners import NameRecord
from model_steps.definition.source import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from model_steps.definition.template_bounds import MAX_BITS, MAX_SIZE
from model_steps.errors import ImportRefusedError
from model_steps.runtime.resolution import resolve_class
from model_steps.serving.limits import ServerLimits
from model_steps.settings import allow_list, load_settings
from tests.definitions import definition

DOCS = Path(__file__).resolve().parents[2] / "docs"
LIMITS = (DOCS / "reference" / "limits.md").read_text()
THREATS = (DOCS / "explanation" / "threat-model.md").read_text()


def rows(text: str, heading: str) -> list[list[str]]:
    """The table rows (cells) under ``heading``, without the header and rule."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)


def number(cell: str) -> float:
    return float(cell.split()[0])


def test_the_definition_limits_are_the_loaders() -> None:
    table = {row[2]: number(row[1]) for row in rows(LIMITS, "Model definition files")}
    assert table == {
        "none (`MAX_FILE_BYTES`)": MAX_FILE_BYTES,
        "none (`MAX_NODES`)": MAX_NODES,
        "none (`MAX_DEPTH`)": MAX_DEPTH,
    }


def test_the_template_limits_are_the_sandboxs() -> None:
    values = [number(row[1]) for row in rows(LIMITS, "Templates")]
    assert values == [MAX_BITS, MAX_SIZE, MAX_SIZE, 100_000]


def test_every_serve_limit_is_an_option_with_the_documented_default() -> None:
    documented = {
        re.search(r"`(--[a-z-]+)`", row[2]).group(1): number(row[1])  # type: ignore[union-attr]
        for row in rows(LIMITS, "`model-steps serve`")
    }
    serve = _parser().parse_args(["serve", "iris"])
    defaults = ServerLimits()
    for option, value in documented.items():
        field = option.removeprefix("--").replace("-", "_")
        assert getattr(serve, field) == getattr(defaults, field) == value
    assert set(documented) == {f"--{f.replace('_', '-')}" for f in vars(defaults)}


def test_moving_the_owners_file_as_documented_moves_the_name(tmp_path: Path) -> None:
    (script,) = blocks(THREATS, "bash")[:1]
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "iris.yaml").write_text(definition("iris"))
    names = NameRecord(tmp_path / "names.json")
    load_and_validate([tmp_path / "dags"], {}, names=names)
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True)
    (model,) = load_and_validate([tmp_path / "dags"], {}, names=names).models
    assert model.path == tmp_path / "dags" / "botany" / "iris.yaml"
    assert names.read(tmp_path / "dags") == {"iris": "botany/iris.yaml"}


def test_the_documented_refused_classes_setting_refuses_them() -> None:
    settings = blocks(THREATS, "bash")[1]
    environ = dict(line.split("=", 1) for line in settings.splitlines() if "=" in line)
    allow = allow_list(environ, [])
    assert allow.refused_classes == (
        "sklearn.linear_model:LinearRegression",
        "catboost.core:CatBoost",
    )
    with pytest.raises(ImportRefusedError, match="opens files or connections"):
        resolve_class("sklearn.linear_model", "LinearRegression", ("fit",), allow)


def test_the_documented_airflow_cfg_form_is_read(tmp_path: Path) -> None:
    (config,) = blocks(THREATS, "ini")
    (tmp_path / "airflow.cfg").write_text(config)
    settings = load_settings({"AIRFLOW_HOME": str(tmp_path), "PATH": os.environ["PATH"]})
    assert settings.allow_list.refused_classes == (
        "sklearn.linear_model:LinearRegression",
        "catboost.core:CatBoost",
    )
