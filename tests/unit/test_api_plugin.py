"""The plugin module every Airflow process loads: registering it must cost next to nothing."""

from __future__ import annotations

import subprocess
import sys

LAZY = (
    "model_steps.airflow.api",
    "model_steps.definition.loader",
    "model_steps.runtime",
    "fastapi",
)


def test_loading_the_plugin_builds_no_app_and_parses_nothing() -> None:
    """The DAG processor and every worker load plugins; only the API server needs the app."""
    code = (
        "import sys\n"
        "from airflow.plugins_manager import is_valid_plugin\n"
        "from model_steps.airflow.plugin import ModelStepsPlugin\n"
        "assert is_valid_plugin(ModelStepsPlugin)\n"
        "ModelStepsPlugin.validate(); ModelStepsPlugin().external_views\n"
        f"print(sorted(m for m in {LAZY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
