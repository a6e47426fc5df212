"""docs/how-to/partitions.md: its model validates and its settings do what the page says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model_steps.definition.loader import load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.runtime.partitioned import partition_size
from model_steps.settings import load_settings

PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "partitions.md"
MIB = 1024**2


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


@pytest.fixture
def spec(tmp_path: Path) -> ModelSpec:
    (model,) = blocks("yaml")
    assert model.startswith("apiVersion: model-steps/v1")
    (tmp_path / "churn_scores.yaml").write_text(model)
    catalog = load_and_validate([tmp_path], {"MODEL_STEPS_DATA_ROOT": str(tmp_path / "data")})
    assert catalog.broken == ()
    (loaded,) = catalog.models
    return loaded.spec


def test_the_pages_model_validates_with_its_partition_size(spec: ModelSpec) -> None:
    assert partition_size(spec, {}) == 128 * MIB


def test_the_deployment_setting_applies_to_a_model_that_sets_no_size(
    spec: ModelSpec, tmp_path: Path
) -> None:
    (snippet,) = blocks("bash")
    plain = spec.model_copy(
        update={"airflow": spec.airflow.model_copy(update={"partition_size": None})}
    )
    (tmp_path / "spec.json").write_text(plain.model_dump_json(by_alias=True))
    (tmp_path / "check.py").write_text(
        "import os, sys; from pathlib import Path\n"
        "from model_steps.definition.schema import ModelSpec\n"
        "from model_steps.runtime.partitioned import partition_size\n"
        "spec = ModelSpec.model_validate_json(Path(sys.argv[1]).read_text())\n"
        "print(partition_size(spec, os.environ))\n"
    )
    result = subprocess.run(
        ["bash", "-c", f"{snippet}\n{sys.executable} check.py spec.json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == str(512 * MIB)


def test_the_airflow_cfg_setting_applies_the_same_way(spec: ModelSpec, tmp_path: Path) -> None:
    (snippet,) = blocks("ini")
    (tmp_path / "airflow.cfg").write_text(snippet)
    settings = load_settings({"AIRFLOW_HOME": str(tmp_path)})
    plain = spec.model_copy(
        update={"airflow": spec.airflow.model_copy(update={"partition_size": None})}
    )
    assert partition_size(plain, settings.environ) == 512 * MIB
    assert partition_size(plain, {}) == 1024 * MIB  # nothing set: the default
