"""A developer's own Airflow settings (home config, AIRFLOW_CONFIG, exported variables) never
change what the tests see."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from model_steps.settings import DEFAULT_ALLOWED, load_settings
from tests.conftest import REPO, SESSION_DAGS


def test_settings_in_tests_come_from_the_session_home_alone() -> None:
    session, empty = load_settings(), load_settings({})
    assert session.dags_folder == SESSION_DAGS
    assert session.allow_list.packages == empty.allow_list.packages == DEFAULT_ALLOWED
    assert session.conn_id is None and empty.conn_id is None
    assert empty.dags_folder == Path.home() / "airflow" / "dags"
    assert not (Path.home() / "airflow").exists()


def test_a_developers_airflow_settings_do_not_reach_the_tests(tmp_path: Path) -> None:
    """A pytest of its own, started from a shell holding a developer's settings."""
    home = tmp_path / "home"
    (home / "airflow").mkdir(parents=True)
    hostile = "[core]\ndags_folder = /elsewhere\n[model_steps]\nallowed_imports = os\nconn_id = x\n"
    (home / "airflow" / "airflow.cfg").write_text(hostile)
    (tmp_path / "own.cfg").write_text(hostile)
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MODEL_STEPS"))}
    shell |= {
        "HOME": str(home),
        "AIRFLOW_CONFIG": str(tmp_path / "own.cfg"),
        "MODEL_STEPS_ALLOWED_IMPORTS": "pandas",
        "MODEL_STEPS_CONN_ID": "developers_s3",
        "AIRFLOW__MODEL_STEPS__ALLOWED_FUNCTIONS": "numpy:load",
    }
    inner = test_settings_in_tests_come_from_the_session_home_alone.__name__
    this = f"{Path(__file__).relative_to(REPO)}::{inner}"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", this],
        cwd=REPO,
        env=shell,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
