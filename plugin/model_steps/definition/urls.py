"""Where a templated data URL may point once a run's parameters are in it.

A trigger config is hostile until checked: ``{"name": "../../other_team/x"}`` rendered into
``s3://data/{{ params.name }}.csv`` must not read or write outside the folder the template
names. The rule is the template's literal prefix (the text before its first tag): it fixes the
scheme and the bucket, and the rendered URL keeps them.

- :func:`location_issue` (at validate): a URL template that has a scheme must write it and its
  bucket out (``s3://bucket/``) before any tag; the rest may be templated.
- :func:`url_refusal` (before a task reads or writes anything): the rendered URL has no ``..``
  segment (nor an encoded one), keeps the template's scheme and bucket, does not chain another
  filesystem (``::``), and is absolute only where the template is.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["literal_prefix", "location_issue", "segments", "url_refusal"]

_TAG = re.compile(r"\{[{%#]")


def literal_prefix(template: str) -> str:
    """The text before the template's first tag: what every rendering starts with."""
    match = _TAG.search(template)
    return template if match is None else template[: match.start()]


def _location(prefix: str) -> str | None:
    """``scheme://bucket/`` when ``prefix`` writes both out in full; else None."""
    scheme, separator, rest = prefix.partition("://")
    if not separator or "/" not in rest or not scheme:
        return None
    return f"{scheme}://{rest.split('/', 1)[0]}/"


def location_issue(template: str) -> str | None:
    """Why a URL template lets a run choose its scheme or bucket; None when it does not."""
    prefix = literal_prefix(template)
    if "://" in template and _location(prefix) is None:
        return (
            f"the scheme and bucket of {template!r} must be written out before any template "
            "tag (e.g. 's3://bucket/{{ params.x }}.csv'), so a run cannot choose where data "
            "is read or written"
        )
    return None


def segments(url: str) -> list[str]:
    """Path segments after undoing percent-encoding (``%2e%2e`` is ``..``), on slashes."""
    text = url
    for _ in range(3):  # double encoding (%252e) too
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return re.split(r"[/\\]", text)


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", path) is not None


def url_refusal(template: str, rendered: str) -> str | None:
    """Why a rendered URL may not be used; None when it stays where its template points."""
    if template == rendered:
        return None
    prefix = literal_prefix(template)
    location = _location(prefix)
    if ".." in segments(rendered):
        return "it has a '..' segment, which would leave the folder its template names"
    if location is not None:
        if not rendered.startswith(location):
            return f"it leaves {location}, the scheme and bucket its template names"
        rest = rendered[len(location) :]
    else:
        if _is_absolute(rendered) and not _is_absolute(prefix):
            return "it is an absolute path where its template names a relative one"
        rest = rendered
    if "://" in rest or "::" in rest:
        return "it names another scheme or filesystem than its template"
    return None
