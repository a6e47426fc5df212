"""``make test`` says which system packages it needs before any test fails for their lack."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO


def make_system(path: str) -> subprocess.CompletedProcess[str]:
    """``make system`` with ``path`` as the whole PATH its recipe sees."""
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "system", f"PATH={path}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_missing_chromium_and_redis_are_named_with_the_command_that_installs_them(
    tmp_path: Path,
) -> None:
    # A PATH with a shell and ls but neither chromium nor redis-server.
    for tool in ("sh", "ls"):
        (tmp_path / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    result = make_system(str(tmp_path))
    assert result.returncode != 0
    assert "pip cannot install: chromium redis-server" in result.stdout
    assert "sudo apt-get install -y chromium redis-server" in result.stdout


def run_environment(*assignments: str) -> dict[str, str]:
    """The Airflow API settings ``make run`` hands ``airflow standalone``, with ``assignments``."""
    show = "show-api: ; @env | grep -E '^AIRFLOW__(API__PORT|CORE__EXECUTION_API_SERVER_URL)='"
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(REPO),
            f"--eval={show}",
            "show-api",
            *assignments,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_make_run_serves_on_8080_by_default() -> None:
    assert run_environment() == {
        "AIRFLOW__API__PORT": "8080",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://localhost:8080/execution/",
    }


def test_one_variable_moves_make_run_and_the_address_tasks_report_to() -> None:
    assert run_environment("PORT=8090") == {
        "AIRFLOW__API__PORT": "8090",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://localhost:8090/execution/",
    }
