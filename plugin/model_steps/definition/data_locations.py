"""Where a definition's data tables may be read and written: the deployment's allowed places.

A data URL is the YAML author's choice, and fsspec reaches far: ``file:///proc/self/environ``
reads the worker's secrets, an output into the DAGs folder writes code the DAG processor runs,
``http://169.254.169.254/`` asks the cloud's metadata service, ``simplecache::s3://`` chains
filesystems, and an output into another model's store overwrites its versions. So every data
URL must lie, by whole path segments, under one of the prefixes the deployment allows
(:func:`model_steps.settings.allowed_data`), with one of their protocols, without ``::`` or
``..``, and never in the DAGs folder or in any model's store, even where an allowed prefix
covers them.

The loader checks each URL as written (a template by its literal prefix, which every rendering
starts with); a task checks the rendered URL again before it reads or writes anything.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from model_steps.definition.schema import ModelSpec
from model_steps.definition.stores import (
    normal_location,
    real_path,
    resolving_once,
    store_locations,
)
from model_steps.definition.templates import is_template
from model_steps.definition.urls import literal_prefix, segments
from model_steps.errors import UnsafeUrlError
from model_steps.settings import ALLOWED_DATA_VARS, DATA_ROOT_VAR, Settings, allowed_data

__all__ = [
    "NOWHERE",
    "DataPlaces",
    "catalog_places",
    "claimed_places",
    "data_places",
    "deployment_places",
    "location_issues",
    "model_stores",
    "places_under",
    "store_issues",
]

SETTING = f"{ALLOWED_DATA_VARS[0]} ([model_steps] allowed_data)"
Loc = tuple[str | int, ...]
DAGS_FOLDER = "the DAGs folder"
ASSETS_ROOT = "the deployment's assets root (MODEL_STEPS_ASSETS_ROOT)"
_PARTICIPLES = {"read": "read", "write": "written"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _place(url: str) -> str | None:
    """``scheme://path`` without a trailing slash, local paths resolved; None if not absolute."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "file://" + real_path(url) if url.startswith("/") else None
    if scheme.lower() in ("file", "local"):  # fsspec reads file://x/y as a relative path
        return "file://" + real_path(rest) if rest.startswith("/") else None
    return normal_location(url).rstrip("/") if rest.strip("/") else f"{scheme.lower()}://"


def _places(urls: Iterable[str]) -> list[str | None]:
    """:func:`_place` of many URLs, each local folder above them resolved once.

    A folder of ten thousand models has ten thousand stores, mostly under one root: resolving
    each path whole would repeat the same ``lstat`` calls for every common parent.
    """
    with resolving_once():
        return [_place(url) for url in urls]


def _prefix(text: str) -> str:
    """An allowed prefix as a place; a relative local path is taken from the current folder."""
    return _place(text if "://" in text else str(Path(text).resolve())) or text


def places_under(root: str, why: str) -> DataPlaces:
    """Only ``root`` allowed: for a location the operator typed, never a definition's."""
    return DataPlaces((_prefix(root),), why)


def _inside(place: str, prefix: str) -> bool:
    """Whether ``place`` is ``prefix`` or lies under it, by whole path segments."""
    if prefix.endswith("://"):
        return place.startswith(prefix)
    return place == prefix or place.startswith(prefix.rstrip("/") + "/")


def _folders(place: str) -> list[str]:
    """``place`` and each folder above it, up to its bucket or the root folder."""
    scheme, _, path = place.partition("://")
    parts = path.rstrip("/").split("/")
    return [f"{scheme}://{'/'.join(parts[:end])}" for end in range(len(parts), 0, -1)]


def _protocol(place: str) -> str:
    return place.partition("://")[0]


@dataclass(frozen=True)
class DataPlaces:
    """The allowed prefixes (normalised) and the places inside them that stay out of reach.

    ``setting`` says, for messages, which setting the prefixes came from and its value.
    ``forbidden`` pairs a place with what it is (``the DAGs folder``, ``the store of model
    'iris'``).
    """

    allowed: tuple[str, ...]
    setting: str
    forbidden: tuple[tuple[str, str], ...] = ()

    def refusal(self, url: str) -> str | None:
        """Why a concrete URL may not be read or written; None when it may."""
        if _CONTROL.search(url):
            return "it holds a control character (a NUL byte, a newline)"
        if "::" in url:
            return "it chains filesystems ('::'), which data URLs may not"
        if ".." in segments(url):
            return "it has a '..' segment"
        place = _place(url)
        if place is None:
            return "it is a relative path; data URLs are absolute ('/srv/data/x.csv', 's3://...')"
        return self._place_refusal(place) or self._forbidden_refusal(place, inside=True)

    def template_refusal(self, template: str) -> str | None:
        """Why a templated URL may not be used, judged by the folder its literal text fixes.

        Every rendering starts with the literal prefix, and a rendered URL with ``..`` or
        ``::`` is refused at run time, so the folder up to the prefix's last ``/`` bounds where
        any run can read or write: it must be allowed, and hold no forbidden place.
        """
        prefix = literal_prefix(template)
        folder = prefix[: prefix.rfind("/") + 1]
        if "::" in prefix:
            return "it chains filesystems ('::'), which data URLs may not"
        if ".." in segments(folder):
            return "it has a '..' segment"
        place = _place(folder) if folder.strip("/") or folder.startswith("/") else None
        if place is None or folder.endswith(":/") or folder.endswith("://"):
            return (
                "its allowed location must be written out before the first template tag "
                "(e.g. 's3://team-data/{{ params.x }}.csv'), so no run can choose it"
            )
        return (
            self._place_refusal(place)
            or self._forbidden_refusal(place, inside=True)
            or self._forbidden_refusal(place, inside=False)
        )

    def check(self, url: str, what: str) -> None:
        """Raise when ``url`` may not be read or written: before any I/O on a definition's data.

        Raises:
            UnsafeUrlError: the URL is outside the allowed places, or in a forbidden one.
        """
        refusal = self.refusal(url)
        if refusal is not None:
            raise UnsafeUrlError(f"{what} {url!r} is refused: {refusal}; {self.setting}")

    def _place_refusal(self, place: str) -> str | None:
        if not self.allowed:
            return "no data location is allowed in this deployment"
        protocols = {_protocol(prefix) for prefix in self.allowed}
        if _protocol(place) not in protocols:
            return (
                f"its protocol {_protocol(place)}:// is not one of the allowed locations' "
                f"({', '.join(sorted(p + '://' for p in protocols))})"
            )
        if not any(_inside(place, prefix) for prefix in self.allowed):
            return "it is outside the allowed data locations"
        return None

    @cached_property
    def _by_place(self) -> dict[str, str]:
        """The forbidden places by location, the first named winning (the DAGs folder)."""
        found: dict[str, str] = {}
        for location, what in self.forbidden:
            found.setdefault(location.rstrip("/"), what)
        return found

    @cached_property
    def dags_folders(self) -> tuple[str, ...]:
        """The forbidden places that are DAGs folders (kept once, not sought per model)."""
        return tuple(place for place, what in self.forbidden if what == DAGS_FOLDER)

    @cached_property
    def _sorted(self) -> list[str]:
        return sorted(self._by_place)

    def _forbidden_refusal(self, place: str, *, inside: bool) -> str | None:
        """Whether ``place`` lies in a forbidden place (``inside``), or holds one.

        Looked up by the place's own folders and by a sorted search, not by comparing with
        each place: a folder of a thousand models has a thousand stores, each URL checked.
        """
        if inside:
            what = next((self._by_place[f] for f in _folders(place) if f in self._by_place), None)
            return None if what is None else f"it is inside {what}, which data URLs may never reach"
        under = place.rstrip("/") + "/"
        index = bisect.bisect_left(self._sorted, under)
        if index < len(self._sorted) and self._sorted[index].startswith(under):
            what = self._by_place[self._sorted[index]]
            return (
                f"a run's parameters could steer it into {what}, which lies in the folder "
                "its literal text fixes; write more of the path out before the first tag"
            )
        return None

    def to_json(self) -> dict[str, Any]:
        """Plain data for a child process (``validate --data`` reads headers there)."""
        return {
            "allowed": list(self.allowed),
            "setting": self.setting,
            "forbidden": [list(pair) for pair in self.forbidden],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataPlaces:
        """The places :meth:`to_json` wrote."""
        forbidden = tuple((str(place), str(what)) for place, what in data["forbidden"])
        return cls(tuple(data["allowed"]), str(data["setting"]), forbidden)


NOWHERE = DataPlaces((), "no data location is allowed here")
"""For an environment that reads no tables (a serving handler's)."""


def _setting(environ: Mapping[str, str], prefixes: tuple[str, ...]) -> str:
    """What a refused URL's message says is allowed instead, and where that comes from."""
    if any(environ.get(name) for name in ALLOWED_DATA_VARS):
        return f"data is allowed only under {SETTING}: {', '.join(prefixes)}"
    if prefixes:
        return (
            f"{SETTING} is not set, so data is allowed only under {DATA_ROOT_VAR}: "
            f"{', '.join(prefixes)}; set {ALLOWED_DATA_VARS[0]} to allow other prefixes"
        )
    return (
        f"neither {ALLOWED_DATA_VARS[0]} nor {DATA_ROOT_VAR} is set: set {SETTING} to the URL "
        "prefixes definitions may read and write (e.g. 's3://team-data/, /srv/data/')"
    )


def data_places(
    environ: Mapping[str, str],
    dags_folders: Iterable[Path],
    stores: Iterable[tuple[str, str]] = (),
) -> DataPlaces:
    """The deployment's allowed data places; ``stores`` pairs each store location with a name.

    The DAGs folders and the stores are forbidden even where an allowed prefix covers them.
    """
    prefixes = allowed_data(environ)
    allowed = tuple(dict.fromkeys(map(_prefix, prefixes)))
    forbidden = [(_place(str(f.resolve())) or "", DAGS_FOLDER) for f in dags_folders]
    pairs = list(stores)
    places = _places(location for location, _ in pairs)
    forbidden += [
        (place or location, what) for place, (location, what) in zip(places, pairs, strict=True)
    ]
    return DataPlaces(allowed, _setting(environ, prefixes), tuple(dict.fromkeys(forbidden)))


def model_stores(spec: ModelSpec, assets_root: str | None) -> list[tuple[str, str]]:
    """A model's store locations, named for messages."""
    return [
        (loc, f"the store of model {spec.name!r}") for loc in store_locations(spec, assets_root)
    ]


def catalog_places(
    environ: Mapping[str, str],
    dags_folders: Iterable[Path],
    specs: Iterable[ModelSpec],
    assets_root: str | None,
) -> DataPlaces:
    """The places for definitions validated together: every one of their stores is forbidden."""
    claims = [(spec.name, store_locations(spec, assets_root)) for spec in specs]
    return claimed_places(environ, dags_folders, claims, assets_root)


def claimed_places(
    environ: Mapping[str, str],
    dags_folders: Iterable[Path],
    claims: Iterable[tuple[str, Iterable[str]]],
    assets_root: str | None,
) -> DataPlaces:
    """The places when each model is known by its name and store locations only."""
    stores = [
        (location, f"the store of model {name!r}")
        for name, locations in claims
        for location in locations
    ]
    if assets_root is not None:
        stores.append((assets_root, ASSETS_ROOT))
    return data_places(environ, dags_folders, stores)


def deployment_places(spec: ModelSpec, settings: Settings) -> DataPlaces:
    """What a task of ``spec`` may read and write, from the deployment's settings.

    The DAGs folder and the bundle the definition was read from, its own store and the
    deployment's assets root stay out of reach; the loader already kept every URL, and every
    template's folder, out of the other models' stores.
    """
    return catalog_places(settings.environ, settings.code_folders, [spec], settings.assets_root)


def _store_roots(spec: ModelSpec) -> list[tuple[Loc, str]]:
    """Each asset root the definition itself names, at its field."""
    roots: list[tuple[Loc, str]] = (
        [(("assets", "root"), spec.assets.root)] if spec.assets.root else []
    )
    roots += [
        (("steps", i, "assets_root"), s.assets_root)
        for i, s in enumerate(spec.steps)
        if s.assets_root
    ]
    return roots


def store_issues(spec: ModelSpec, places: DataPlaces) -> list[tuple[Loc, str]]:
    """Each asset root of ``spec`` whose store would lie in, or hold, the DAGs folder.

    A store holds files named by the definition (step ids, custom save functions): in the
    DAGs folder they would sit where the DAG processor imports code.
    """
    dags = places.dags_folders
    issues = []
    for loc, root in _store_roots(spec):
        store = _place(f"{normal_location(root).rstrip('/')}/{spec.directory}") or root
        if any(_inside(store, folder) or _inside(folder, store) for folder in dags):
            issues.append(
                (
                    loc,
                    f"the store at {root!r} would lie in or hold the DAGs folder, where "
                    "files are run as code; put model stores outside the DAGs folder",
                )
            )
    return issues


def location_issues(spec: ModelSpec, places: DataPlaces) -> list[tuple[Loc, str]]:
    """Each data URL of ``spec`` that ``places`` refuses, at its ``url`` field.

    And each store of ``spec`` in the DAGs folder, at its root's field.
    """
    issues = store_issues(spec, places)
    for loc, ref, verb in spec.tables():
        url = ref.url
        refusal = places.template_refusal(url) if is_template(url) else places.refusal(url)
        if refusal is not None:
            issues.append(
                (
                    (*loc, "url"),
                    f"data may not be {_PARTICIPLES[verb]} at {url!r}: {refusal}; {places.setting}",
                )
            )
    return issues
