"""The Airflow plugin entry point (``airflow.plugins``): the Models API, page and parse watcher.

Every Airflow process loads plugins (the DAG processor and each worker too), but only the API
server reads ``fastapi_apps``. So importing this module stays cheap: the app (FastAPI, the DB
models, the settings) is built the first time the API server asks for it, never at import.
The listener (:mod:`model_steps.airflow.parse_watch`) imports nothing heavy either, and does its
work in the DAG processor only.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from model_steps.airflow import parse_watch

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
    """The Models API and a "Models" entry in Airflow's navigation; the parse watcher.

    The watcher has the DAG processor parse the DAG file of a changed model YAML first.
    """

    name = "model_steps"
    listeners = [parse_watch]  # noqa: RUF012 (Airflow's own declaration is a mutable list)
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
