"""The DAG processor's parse watcher: the DAG file of a new, edited or removed YAML goes first.

Airflow orders its queue of DAG files only at the end of a round and when it lists a bundle
(``[dag_processor] refresh_interval``, 300 s). With thousands of models a round takes minutes,
so a new YAML's DAGs waited for the next listing. What Airflow does at every turn of its loop is
claim ``dag_priority_parsing_request`` rows (what its "Reparse" button writes) and put those
files at the front of its queue. The parsing process, where the loader runs, has no DB access;
so a thread of the DAG processor itself writes the rows.

The plugin lists this module as a listener. Airflow calls :func:`on_starting` when any job is
created (scheduler, triggerer, DAG processor) and at every task start. Only a job gets a thread,
and that thread ends as soon as the job turns out not to be the DAG processor (its runner names
it a few milliseconds later); this module imports nothing heavy, so other processes pay nothing
more. In the DAG processor the thread looks every ``[model_steps] parse_watch_interval``
seconds at each local bundle holding the loader: it stats every definition file (never reads
one) and, for each file new, changed or removed since its last look, asks Airflow to parse the
DAG file that builds it (:func:`model_steps.airflow.shards.live_shards`, as the loader chooses).

The DAG processor forks its parsing processes while the thread runs. A fork copies only the
forking thread, so each fork waits for the thread's current look to end (a few tens of ms):
a lock the thread held would otherwise stay held in the child, and the parse would hang.

What a YAML's author can cause: a parse of the loader or of a shard file of the same folder,
at most once per file and look, never a file elsewhere. A failing DB or folder is logged and
tried again at the next look; it never stops the thread or the DAG processor.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

from model_steps.settings import LOADER_FILE

if TYPE_CHECKING:
    from model_steps.definition.folder_index import Stamp
    from model_steps.settings import Settings

__all__ = [
    "Awaited",
    "FolderWatch",
    "ParseWatch",
    "before_stopping",
    "on_starting",
    "request_parses",
]

log = logging.getLogger(__name__)

DAG_PROCESSOR = "DagProcessorJob"
NAMING_WAIT = 60.0
"""Seconds a job may stay unnamed before the thread gives up (a runner names it at once)."""
NAMING_POLL = 0.02
LONGEST_INTERVAL = 3600.0
AWAIT_TIMEOUTS = 3.0
"""How many DAG-processor timeouts a change is awaited before the watcher gives up."""

Sessions = Callable[[], AbstractContextManager[Any]]

FORK_WAIT = 5.0
"""Seconds a fork of the DAG processor waits for the watcher to finish what it is doing."""

_quiet = threading.Lock()
"""Held by the watcher thread while it works, and by the DAG processor while it forks a parsing
process. A fork copies only the forking thread: a lock the watcher held then (a module being
imported, a log handler, the DB pool) stays held in the child for ever, and the parse hangs
until Airflow's import timeout kills it."""
_fork_holds: list[bool] = []


def _before_fork() -> None:
    _fork_holds.append(_quiet.acquire(timeout=FORK_WAIT))


def _after_fork() -> None:
    if _fork_holds and _fork_holds.pop():
        _quiet.release()


@cache
def _guard_forks() -> None:
    """Make every fork of this process wait for the watcher's current work (once a process)."""
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )


_running: dict[int, ParseWatch] = {}
"""The thread of each job that started one: :func:`before_stopping` stops it. Listener hooks
are plain functions, and this is the one state they share."""
_running_lock = threading.Lock()


@hookimpl
def on_starting(component: Any) -> None:
    """Start a watcher thread for a job; it keeps running only in the DAG processor."""
    if not hasattr(type(component), "job_type"):
        return  # a task start, not a job: nothing to do
    watch = ParseWatch(component)
    with _running_lock:
        _running[id(component)] = watch
    watch.start()


@hookimpl
def before_stopping(component: Any) -> None:
    """Stop the job's watcher thread, if it has one."""
    watch = _forget(component)
    if watch is not None:
        watch.stop()


def _forget(job: Any) -> ParseWatch | None:
    with _running_lock:
        return _running.pop(id(job), None)


@dataclass(frozen=True)
class Awaited:
    """A DAG file asked for, whose parse since its change has not been seen yet (wall times)."""

    changed: float
    """The newest change a parse of the file must have begun after."""
    asked: float
    """When it was last asked for."""
    until: float
    """When the watcher stops waiting for that parse."""


@dataclass
class FolderWatch:
    """One DAGs folder (a local bundle holding the loader): its definitions' stamps, its asks."""

    bundle: str
    folder: Path
    stamps: dict[str, Stamp] | None = None
    """Each definition file (relative path) and its stamp at the last look; None before one."""
    pending: dict[int, float] = field(default_factory=dict)
    """DAG files (by shard) to ask for, with their newest change; kept until a write succeeds."""
    awaiting: dict[int, Awaited] = field(default_factory=dict)
    """DAG files asked for and not yet parsed since their change.

    Airflow drops a request for a file it is parsing at that moment, and that parse may have
    begun before the change. With the parse cache on, the loader records when each file's
    parse began and ended (:func:`model_steps.airflow.shards.last_parse`): a parse that ended
    after the ask but began before the change was that one, and the file is asked for again.
    """

    def look(self, settings: Settings, now: float | None = None) -> set[str]:
        """The DAG files to ask for now: of the changes since the last look, and awaited ones.

        The first look only takes stamps. A folder without the loader (unmounted, being
        replaced) is not looked at: its files keep their stamps, so nothing new is asked for
        until it is back.
        """
        from model_steps.airflow.shards import dag_file_name
        from model_steps.definition.folder_index import file_stamp
        from model_steps.definition.loader import definition_paths

        now = time.time() if now is None else now
        if (self.folder / LOADER_FILE).is_file():
            prefix = str(self.folder).rstrip("/") + "/"
            paths = list(definition_paths(self.folder))
            stamps = {path[len(prefix) :]: stamp for path in paths if (stamp := file_stamp(path))}
            before, self.stamps = self.stamps, stamps
            if before is not None:
                changes = _changes(before, stamps, now)
                for index, when in self._shards(changes, settings, len(paths), now).items():
                    self.pending[index] = max(self.pending.get(index, 0.0), when)
        self._ask_again(settings, now)
        return {dag_file_name(index) for index in self.pending}

    def _shards(
        self, changes: dict[str, float], settings: Settings, definitions: int, now: float
    ) -> dict[int, float]:
        """The DAG file building each changed definition, with the newest change it must see.

        That is the shard the loader puts the definition in, or the loader itself while the
        shard's file is not written yet.
        """
        from model_steps.airflow.shards import live_shards, shard_file
        from model_steps.definition.shards import shard_of

        if not changes:
            return {}
        count = live_shards(self.folder, settings, definitions, now)
        shards: dict[int, float] = {}
        for relative, when in changes.items():
            index = shard_of(relative, count)
            if index and not shard_file(self.folder, index).is_file():
                index = 0  # the loader writes that file first
            shards[index] = max(shards.get(index, 0.0), when)
        return shards

    def _ask_again(self, settings: Settings, now: float) -> None:
        """Files whose request Airflow may have dropped go to ``pending`` again."""
        from model_steps.airflow.shards import last_parse

        for index, awaited in list(self.awaiting.items()):
            parse = last_parse(settings, self.folder, index)
            if (parse is not None and parse[0] >= awaited.changed) or now > awaited.until:
                del self.awaiting[index]  # parsed since the change, or given up
            elif parse is not None and parse[1] > awaited.asked:
                self.pending[index] = max(self.pending.get(index, 0.0), awaited.changed)

    def asked(self, settings: Settings, now: float | None = None) -> None:
        """The pending DAG files were asked for: await their parse (with the parse cache on).

        A change is awaited for at most :data:`AWAIT_TIMEOUTS` DAG-processor timeouts: the
        parse running when it was asked for, one waiting for a free process, and its own. A
        parse that never comes (the file fails to import) ends it then.
        """
        now = time.time() if now is None else now
        if settings.parse_cache is not None:
            window = AWAIT_TIMEOUTS * settings.processor_timeout
            for index, changed in self.pending.items():
                old = self.awaiting.get(index)
                if old is not None and old.changed >= changed:
                    self.awaiting[index] = Awaited(old.changed, now, old.until)
                else:
                    self.awaiting[index] = Awaited(changed, now, now + window)
        self.pending = {}


def _changes(before: dict[str, Stamp], after: dict[str, Stamp], now: float) -> dict[str, float]:
    """Each definition new, changed or removed, with when it changed (``now`` if removed).

    The inode's change time, not the modification time: a copy keeping an old one is new.
    """
    changed = {r for r in before.keys() | after.keys() if before.get(r) != after.get(r)}
    return {r: after[r][3] / 1e9 if r in after else now for r in changed}


def request_parses(sessions: Sessions, bundle: str, folder: Path, files: Iterable[str]) -> int:
    """Ask Airflow's DAG processor to parse ``files`` of ``bundle`` next; how many were new.

    A file already asked for (its row not claimed yet) is not asked again; the row's id is a
    hash of the bundle and file, so a row written meanwhile is refused and skipped. A row the DAG
    processor claims between the check and the write only means one more parse. Each file is
    touched first: a claimed request makes Airflow list the bundle and order its queue by
    modification time, and the newest file stays first.
    """
    from airflow.models.dagbag import DagPriorityParsingRequest
    from sqlalchemy import select
    from sqlalchemy.exc import IntegrityError

    wanted = sorted(set(files))
    for name in wanted:
        try:
            os.utime(folder / name, follow_symlinks=False)  # never a file outside the bundle
        except OSError:
            continue  # removed meanwhile: Airflow parses what it finds
    with sessions() as session:
        known = set(
            session.scalars(
                select(DagPriorityParsingRequest.relative_fileloc).where(
                    DagPriorityParsingRequest.bundle_name == bundle,
                    DagPriorityParsingRequest.relative_fileloc.in_(wanted),
                )
            )
        )
    written = 0
    for name in wanted:
        if name in known:
            continue
        try:
            with sessions() as session:  # one row a transaction: a duplicate spoils no other
                session.add(DagPriorityParsingRequest(bundle_name=bundle, relative_fileloc=name))
        except IntegrityError:
            continue  # asked meanwhile, by another DAG processor's watcher
        written += 1
    return written


def _sessions() -> AbstractContextManager[Any]:
    """A session of its own (not the DAG processor's thread-scoped one)."""
    from airflow.utils.session import create_session

    return create_session(scoped=False)


def local_bundles() -> Iterator[tuple[str, Path]]:
    """Each local DAG bundle of this deployment (a look skips those without the loader)."""
    from airflow.dag_processing.bundles.local import LocalDagBundle
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    for bundle in DagBundlesManager().get_all_dag_bundles():  # type: ignore[no-untyped-call]
        if isinstance(bundle, LocalDagBundle):
            yield bundle.name, bundle.path


def _interval() -> float:
    """``[model_steps] parse_watch_interval``; its default if the settings cannot be read."""
    from model_steps.settings import Settings, load_settings

    try:
        interval = load_settings().parse_watch_interval
    except Exception:
        log.exception("model-steps parse watcher: cannot read its interval; using the default")
        interval = Settings.parse_watch_interval
    return min(interval, LONGEST_INTERVAL)


class ParseWatch:
    """The watcher of one job: a daemon thread that looks at the definitions and asks."""

    def __init__(
        self,
        job: Any = None,
        folders: list[FolderWatch] | None = None,
        sessions: Sessions = _sessions,
    ) -> None:
        self.job = job
        self.folders = folders
        """None until the first look lists the local bundles (Airflow's are fixed at start)."""
        self.sessions = sessions
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-steps-parse-watch")
        self._thread.daemon = True

    def start(self) -> None:
        """Start the thread; it returns at once unless the job is the DAG processor."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to end after its current look, and wait for it a while."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        if self._job_type() != DAG_PROCESSOR:
            _forget(self.job)
            return
        _guard_forks()
        with _quiet:
            interval = _interval()
            if interval <= 0:
                log.info("model-steps parse watcher off ([model_steps] parse_watch_interval = 0)")
                return
            log.info("model-steps parse watcher: looking at definitions every %.1f s", interval)
        while not self._stopping.wait(interval):
            with _quiet:
                try:
                    self.poll()
                except Exception:  # the next look tries again; the DAG processor never notices
                    log.exception("model-steps parse watcher: this look failed; trying again")

    def _job_type(self) -> str | None:
        """The job's type once its runner names it (read from the instance, loading nothing)."""
        deadline = time.monotonic() + NAMING_WAIT
        while (kind := vars(self.job).get("job_type")) is None:
            if self._stopping.wait(NAMING_POLL) or time.monotonic() > deadline:
                return None
        return str(kind)

    def poll(self, now: float | None = None) -> dict[str, set[str]]:
        """One look at every folder; the DAG files asked for, by bundle.

        A folder's asks stay pending when writing them fails, and are tried again next look.
        """
        from model_steps.settings import load_settings

        if self.folders is None:
            self.folders = [FolderWatch(name, path) for name, path in local_bundles()]
        settings = load_settings()
        asked: dict[str, set[str]] = {}
        for watch in self.folders:
            try:
                files = watch.look(settings, now)
                if files:
                    written = request_parses(self.sessions, watch.bundle, watch.folder, files)
                    watch.asked(settings, now)
                    asked[watch.bundle] = files
                    log.info(
                        "asked Airflow to parse %s of %s next (%d new requests)",
                        sorted(files),
                        watch.bundle,
                        written,
                    )
            except Exception:
                log.exception("model-steps parse watcher: cannot look at %s now", watch.folder)
        return asked
