"""The Models page's files, the app's root, its icon and its OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

UI_FOLDER = Path(__file__).parent.parent / "ui"
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M3 3v18h18"/>'
    '<path d="m7 14 4-4 4 4 5-6"/></svg>'
)
"""The "Models" entry's icon in Airflow's navigation (served here: nothing loads from elsewhere)."""


router = APIRouter()


_files = StaticFiles(directory=UI_FOLDER, html=True, check_dir=False)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    """The API's OpenAPI document, for signed-in users like every other route."""
    return JSONResponse(request.app.openapi())


@router.get("/", include_in_schema=False)
def home(request: Request) -> RedirectResponse:
    """The app's root opens the Models page."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/")


@router.get("/icon.svg", include_in_schema=False)
def icon() -> Response:
    """The "Models" entry's icon in Airflow's navigation."""
    return Response(ICON, media_type="image/svg+xml")


@router.get("/ui/{path:path}", include_in_schema=False)
async def page(path: str, request: Request) -> Response:
    """The Models page's files, behind the same authentication as the API."""
    return await _files.get_response(path, request.scope)
