"""Errors as JSON with a clear message; a browser that is not signed in goes to the login."""

from __future__ import annotations

import logging

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response

from model_steps.airflow.csrf import json_from_same_origin
from model_steps.errors import CorruptDocumentError, StoreOwnedError, StoreUnavailableError

log = logging.getLogger(__name__)

LOGIN_LANDING = "/plugin/models"
"""Where a browser lands after signing in: the Models page inside Airflow's UI (its url_route)."""


def _store_error(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


def _owned_elsewhere(request: Request, error: Exception) -> JSONResponse:
    """Another model owns the store: nothing is read or changed for this one."""
    return JSONResponse({"detail": str(error)}, status_code=status.HTTP_409_CONFLICT)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    """Say what is wrong with the request, but only to an authenticated caller.

    FastAPI reads the body before it runs the authentication dependency, so without this
    check a malformed body would earn an anonymous caller a 422 instead of a 401.
    """
    assert isinstance(error, RequestValidationError)
    try:
        await get_user(request, None, await bearer_scheme(request))
        if request.method == "POST":  # a forged change is refused as such, whatever its body
            await json_from_same_origin(request)
    except HTTPException as refused:
        return JSONResponse({"detail": refused.detail}, status_code=refused.status_code)
    messages = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()]
    return JSONResponse(
        {"detail": "; ".join(messages)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def _refused(request: Request, error: Exception) -> Response:
    """Send a browser that is not signed in to Airflow's login, and back to the page after.

    Someone who bookmarked the Models page gets Airflow's login form instead of a JSON 401;
    API clients (which do not ask for HTML) still get the 401.
    """
    assert isinstance(error, HTTPException)
    wants_page = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if error.status_code == status.HTTP_401_UNAUTHORIZED and wants_page:
        return RedirectResponse(get_auth_manager().get_url_login(next_url=LOGIN_LANDING))
    return await http_exception_handler(request, error)


def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """Details go to the API server's log, not to the caller."""
    log.exception("model-steps API: %s %s failed", request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal error in the model-steps API; the API server's log has the details"},
        status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def add_error_handlers(app: FastAPI) -> None:
    """Every error the routes let through, answered as JSON with a clear message."""
    app.add_exception_handler(StoreUnavailableError, _store_error)
    app.add_exception_handler(CorruptDocumentError, _store_error)
    app.add_exception_handler(StoreOwnedError, _owned_elsewhere)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _refused)
    app.add_exception_handler(Exception, _unexpected_error)
