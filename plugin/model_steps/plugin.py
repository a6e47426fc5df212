"""The Airflow plugin entry point (``airflow.plugins``); its API and pages arrive with the UI."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

__all__ = ["ModelStepsPlugin"]


class ModelStepsPlugin(AirflowPlugin):
    """Registers airflow-model-steps with Airflow so its version shows under Admin > Plugins."""

    name = "model_steps"
