"""The Airflow plugin entry point (``airflow.plugins``): the Models API and the "Models" page.

Every Airflow process loads plugins (the DAG processor and each worker too), but only the API
server reads ``fastapi_apps``. So importing this module stays cheap: the app (FastAPI, the DB
models, the settings) is built the first time the API server asks for it, never at import.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

__all__ = ["ModelStepsPlugin"]

URL_PREFIX = "/model-steps"


class _BuiltOnFirstUse:
    """A class attribute whose value is computed on first read, then kept."""

    def __init__(self, build: Any) -> None:
        self._build = cache(build)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self._build()


def _fastapi_apps() -> list[dict[str, Any]]:
    from model_steps.airflow.api import create_app

    return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Model steps"}]


class ModelStepsPlugin(AirflowPlugin):
    """Adds the Models API to Airflow's API server and a "Models" entry to its navigation."""

    name = "model_steps"
    fastapi_apps = _BuiltOnFirstUse(_fastapi_apps)
    external_views = [  # noqa: RUF012 (Airflow's own declaration is a mutable list)
        {
            "name": "Models",
            "href": f"{URL_PREFIX}/ui/",
            "url_route": "models",
            "destination": "nav",
            "icon": f"{URL_PREFIX}/icon.svg",
        }
    ]
