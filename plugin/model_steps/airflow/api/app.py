"""The Models API app: its authentication, error handlers and routers."""

from __future__ import annotations

from airflow.api_fastapi.core_api.security import get_user
from airflow.configuration import conf
from fastapi import Depends, FastAPI

from model_steps.airflow.api.action_routes import router as action_router
from model_steps.airflow.api.catalog import Definitions
from model_steps.airflow.api.errors import add_error_handlers
from model_steps.airflow.api.model_routes import router as model_router
from model_steps.airflow.api.page_routes import router as page_router
from model_steps.airflow.api.version_routes import router as version_router
from model_steps.airflow.api_models import ERROR_RESPONSES
from model_steps.airflow.masking import MaskedAnswers
from model_steps.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The Models API; settings are read now (at plugin start), not at import.

    Args:
        settings: Where definitions and assets live; the deployment's own by default.
    """
    from importlib.metadata import version

    app = FastAPI(
        title="airflow-model-steps",
        version=version("airflow-model-steps"),
        description="Models defined in the DAGs folder: versions, metrics, cards, validation "
        "errors, rollback and schedules. Authenticate as for Airflow's own API (a JWT from "
        "POST /auth/token as a bearer token, or the Airflow UI's session cookie).",
        dependencies=[Depends(get_user)],
        responses=ERROR_RESPONSES,
        docs_url=None,  # Swagger and ReDoc pages would skip the app's authentication
        redoc_url=None,
        openapi_url=None,  # served by page_routes, behind the same authentication
    )
    app.state.definitions = Definitions(settings or load_settings())
    app.state.base_url = conf.get("api", "base_url", fallback="")
    app.add_middleware(MaskedAnswers)
    add_error_handlers(app)
    for router in (model_router, version_router, action_router, page_router):
        app.include_router(router)
    return app
