"""The image's install resolves: our extras beside what Airflow's constraints pin.

docker/Dockerfile installs ``apache-airflow==<its version>`` and the package's extras under
Airflow's constraints file for that version; a pin of ours that the constraints cannot meet
(``apache-airflow-providers-celery>=3.26`` against 3.3.2's 3.24.0) stops the build with
``ResolutionImpossible``. pip resolves the same install against PyPI here, with the versions
those constraints pin for what the extras share with them (docker/pins.txt), without
installing anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

PINS = REPO / "docker" / "pins.txt"


def resolve(tmp_path: Path, *requirements: str) -> dict[str, str]:
    """What pip would install for ``requirements`` under the pins: name -> version."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--constraint",
            str(PINS),
            *requirements,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
    assert done.returncode == 0, "\n".join(errors) or done.stderr[-3000:]
    installed = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in installed}


def test_the_cluster_and_boosting_extras_resolve_with_the_images_airflow_and_providers(
    tmp_path: Path,
) -> None:
    pins = dict(
        line.split("==")
        for line in PINS.read_text().splitlines()
        if line and not line.startswith("#")
    )

    resolved = resolve(
        tmp_path, f"apache-airflow=={pins['apache-airflow']}", f"{REPO}[cluster,boosting]"
    )

    for name, version in pins.items():
        if name in resolved:
            assert resolved[name] == version, name
    assert resolved["apache-airflow-providers-celery"] == pins["apache-airflow-providers-celery"]
    assert resolved["celery"] == pins["celery"]
