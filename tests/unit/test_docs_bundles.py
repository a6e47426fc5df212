"""docs/how-to/dag-bundles.md: its bundle configuration and its command work as written."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from model_steps.cli import main
from tests.conftest import REPO

PAGE = (REPO / "docs" / "how-to" / "dag-bundles.md").read_text()
CONFIG = re.findall(r"^```json\n(.*?)^```", PAGE, re.M | re.S)
COMMANDS = re.findall(r"^\$ (model-steps .*)$", PAGE, re.M)


def test_the_bundle_configuration_declares_a_local_bundle_airflow_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    (config,) = CONFIG
    bundles = json.loads(config)
    bundles[0]["kwargs"]["path"] = str(tmp_path)  # the page's path, on this machine
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    bundle = DagBundlesManager().get_bundle("models")
    assert Path(bundle.path) == tmp_path


@pytest.mark.parametrize("command", COMMANDS)
def test_the_pages_command_succeeds(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    program, *args = shlex.split(command)
    assert program == "model-steps"
    assert main(args) == 0, capsys.readouterr()
