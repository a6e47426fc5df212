"""The definitions a listing shows: from Airflow's DB, and this server's own DAGs folder."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, status
from sqlalchemy.orm import Session

from model_steps.airflow.api.permissions import not_found
from model_steps.airflow.db_catalog import StoredOutlines, loader_errors
from model_steps.airflow.outline import (
    InvalidOutline,
    ModelOutline,
    invalid_outline,
    model_outline,
)
from model_steps.definition.cache import ParseCache
from model_steps.definition.loader import Catalog, find_definition_files, load_and_validate
from model_steps.definition.owners import NameRecord, relative_name
from model_steps.settings import Settings

log = logging.getLogger(__name__)

_STORE_THREADS = 8


@dataclass(frozen=True)
class Listing:
    """Every model and broken file a listing shows, each with the bundle Airflow read it from."""

    models: tuple[tuple[ModelOutline, str | None], ...]
    invalid: tuple[tuple[InvalidOutline, str | None], ...]

    def find(self, name: str) -> tuple[ModelOutline, str | None] | None:
        """The model named ``name`` with its bundle, or None."""
        return next((m for m in self.models if m[0].name == name), None)


class Definitions:
    """The definitions Airflow parsed (the metadata DB), and those this server can read itself.

    Airflow's API server reads DAGs from the DB only, and the official Helm chart gives it no
    DAG files: what the DAG processor stored is the listing (:mod:`..db_catalog`). When this
    process does see a DAGs folder (``make run``, the compose file), a file there is shown as
    it is now, so a definition just dropped in lists at once as "not in Airflow yet" and a
    file's new problems show before the next parse. The folder is parsed again only when a
    file changes.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stores = ThreadPoolExecutor(_STORE_THREADS, thread_name_prefix="model-store")
        """One bounded pool for every listing: a hung store holds a thread, never more."""
        self.stored = StoredOutlines()
        self._lock = threading.Lock()
        self._key: tuple[tuple[str, int, int], ...] | None = None
        self._local: tuple[list[ModelOutline], list[InvalidOutline]] = ([], [])

    def catalog(self, session: Session) -> Listing:
        """The DB's outlines, each replaced by this server's own file where it has one."""
        models: dict[str, tuple[ModelOutline, str | None]] = {}
        invalid: dict[str, tuple[InvalidOutline, str | None]] = {}
        for stored in [*self.stored.read(session), *loader_errors(session)]:
            if isinstance(stored.outline, ModelOutline):
                models.setdefault(stored.outline.name, (stored.outline, stored.bundle))
            else:
                invalid.setdefault(stored.outline.file, (stored.outline, stored.bundle))
        local_models, local_invalid = self._local_outlines()
        for model in local_models:  # the bundle Airflow read it from, if it has read it yet
            models[model.name] = (model, models.get(model.name, (model, None))[1])
            invalid.pop(model.file, None)  # fixed since Airflow's last parse
        for broken in local_invalid:
            invalid[broken.file] = (broken, invalid.get(broken.file, (broken, None))[1])
        return Listing(
            tuple(sorted(models.values(), key=lambda m: (m[0].file, m[0].name))),
            tuple(sorted(invalid.values(), key=lambda b: b[0].file)),
        )

    def model(self, name: str, session: Session) -> tuple[ModelOutline, str | None]:
        """One model, or a 404 that says why when its file is broken."""
        catalog = self.catalog(session)
        found = catalog.find(name)
        if found is not None:
            return found
        broken = next((b for b, _ in catalog.invalid if b.name == name), None)
        if broken is None:
            raise not_found(name)
        # Where the file lives is the deployment's business: the log has it, the answer not.
        log.info("model %r does not load: %s is invalid", name, broken.file)
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"model {name!r} does not load: its definition file is invalid "
            f"({len(broken.problems)} problem(s), listed under 'invalid' in GET /models to "
            "those who may read its DAGs)",
        )

    def _local_outlines(self) -> tuple[list[ModelOutline], list[InvalidOutline]]:
        key = self._fingerprint()
        with self._lock:
            if key != self._key:
                folder, settings = self.settings.dags_folder, self.settings
                catalog = (
                    load_and_validate(
                        [folder],
                        settings.environ,
                        assets_root=settings.assets_root,
                        check_data=True,
                        names=NameRecord(settings.names_record, writable=False),
                        cache=ParseCache.open(
                            settings.parse_cache, settings.parse_cache_key, create=False
                        ),
                    )
                    if key
                    else Catalog((), ())
                )
                self._local = (
                    [
                        model_outline(m.spec, self.relative(m.path), m.problems)
                        for m in catalog.models
                    ],
                    [
                        invalid_outline(self.relative(b.path), b.name, b.problems)
                        for b in catalog.broken
                    ],
                )
                self._key = key
            return self._local

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        stats = []
        for path in find_definition_files([self.settings.dags_folder]):
            try:
                info = path.stat()
            except FileNotFoundError:  # removed while listing: the next listing sees it gone
                continue
            stats.append((str(path), info.st_mtime_ns, info.st_size))
        return tuple(stats)

    def relative(self, path: Path) -> str:
        """``path`` as users know it: relative to the DAGs folder."""
        return relative_name(path, self.settings.dags_folder)
