"""Cross-site request forgery: what a state-changing route of the Models API accepts.

The Models page calls the API with Airflow's session cookie, which a browser also attaches to a
request another site's page makes (a form POST, a ``text/plain`` fetch). So a change (rollback,
pause, resume) is accepted only as ``application/json`` (415 otherwise: no form or simple
request can send it, and a cross-origin fetch that could would need a CORS preflight), and a
change authenticated by the cookie alone must carry an ``Origin`` naming Airflow's own site
(403 otherwise). A bearer token is never sent by a browser on its own, so it needs no Origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import HTTPException, Request, status

__all__ = ["json_from_same_origin"]


async def json_from_same_origin(request: Request) -> None:
    """Refuse a change that is not JSON, or that a cookie carries from another origin.

    Raises:
        HTTPException: 415 for another content type; 403 for a cookie-authenticated request
            without an Origin of this site.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "changes are accepted only as JSON: send 'Content-Type: application/json' with a "
            "JSON body ({} when the change takes no arguments)",
        )
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    origin = request.headers.get("origin")
    if origin is None or not _same_site(origin, request):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a change authenticated by the Airflow UI's session cookie must come from "
            f"Airflow's own pages; this request's Origin is {origin or 'missing'}. API clients "
            "send a token as 'Authorization: Bearer' instead",
        )


def _same_site(origin: str, request: Request) -> bool:
    """Whether ``origin`` is the host the request was sent to, or Airflow's ``base_url``."""
    host = request.headers.get("host", "").lower()
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc in {host, *_configured_hosts(request)}


def _configured_hosts(request: Request) -> set[str]:
    """The host of Airflow's ``[api] base_url``, for deployments behind a rewriting proxy."""
    base_url: str = getattr(request.app.state, "base_url", "") or ""
    netloc = urlsplit(base_url).netloc.lower()
    return {netloc} if netloc else set()
