"""Real-time handlers: serve a model's published version and hot-reload the next one.

A :class:`ModelHandler` loads the version ``current.json`` names (or a pinned one), verifying
every asset against its manifest checksum, and predicts with the same code the infer DAG runs
(:func:`model_steps.runtime.infer.infer_frame`). A daemon thread polls the pointer cheaply — one
metadata request (an S3 HEAD, a ``stat`` on disk) per poll, the body only when its tag moved —
every ``poll_interval`` seconds with jitter, so a fleet never polls in step, and backs off
exponentially while the store fails. A new version is loaded and warmed up beside the old one,
then swapped in with one assignment, so a request sees the old or the new pipeline, never a
mix; if it cannot be loaded the old one keeps serving and that version is retried with backoff.

Nothing here imports Airflow: a model whose ``assets.conn_id`` names an Airflow connection
needs its ``storage_options`` passed explicitly (``{}`` for fsspec's default credential chain).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from model_steps.definition.loader import LoadedModel, load_and_validate
from model_steps.definition.schema import ModelSpec
from model_steps.errors import (
    DefinitionError,
    InvalidInputError,
    NotDeployedError,
    NotReadyError,
    NotServableError,
    PermanentError,
    PointerMissingError,
    Problem,
    StoreOwnedError,
    UnknownModelError,
    did_you_mean,
)
from model_steps.runtime.carried import with_carried
from model_steps.runtime.context import Environment, environment
from model_steps.runtime.infer import ReadyStep, infer_frame, version_pipeline
from model_steps.runtime.serializers import quiet_type_lookup
from model_steps.serving.batching import Arrival, Batcher, Batching
from model_steps.serving.json_records import json_frame
from model_steps.serving.memory import release_freed_memory
from model_steps.serving.pins import check_pinnable
from model_steps.serving.records import (
    Checked,
    InputSchema,
    Prediction,
    Records,
    checked_records,
)
from model_steps.serving.status import HandlerStatus, metrics_text
from model_steps.settings import AllowList, allow_list, load_settings
from model_steps.store.manifest import Manifest, Pointer
from model_steps.store.model_store import ModelStore, PointerRead, open_store

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

__all__ = ["HandlerSet", "ModelHandler", "poll_wait"]

log = logging.getLogger(__name__)

ReloadHook = Callable[[int | None, int], None]
ErrorHook = Callable[[Exception], None]


@dataclass
class _Stats:
    """The counters behind :class:`HandlerStatus`, changed only under the handler's lock."""

    loaded_at: datetime | None = None
    last_poll_at: datetime | None = None
    last_poll_ok_at: datetime | None = None
    polls: int = 0
    poll_failures: int = 0
    poll_requests: int = 0
    poll_bytes: int = 0
    reloads: int = 0
    reload_failures: int = 0
    last_error: str | None = None
    last_reload_seconds: float | None = None
    last_publish_to_serving_seconds: float | None = None
    unavailable_seconds: float = 0.0
    loading: bool = False
    loading_bytes: int = 0


@dataclass(frozen=True)
class _Version:
    """One loaded version: immutable, swapped in whole, read once per predict call."""

    number: int
    pipeline: tuple[ReadyStep, ...]
    schema: InputSchema
    size: int


@dataclass
class _Retry:
    """A version that failed to load, and when it may be tried again."""

    version: int
    attempts: int = 0
    due: float = field(default_factory=time.monotonic)


class _Serving(ABC):
    """``with`` starts polling and stops it, for a handler and a handler set alike."""

    @abstractmethod
    def start(self) -> Self:
        """Load and begin polling."""

    @abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class ModelHandler(_Serving):
    """Serves one model: loads its current (or pinned) version and follows the pointer.

    Args:
        spec: the model's definition; None when built from a store alone (:meth:`from_store`),
            in which case each version's manifest supplies its steps.
        store: where the model's versions are published.
        name: the model's name in status, metrics and errors.
        poll_interval: seconds between polls of ``current.json``.
        jitter: each wait is ``poll_interval * uniform(1 - jitter, 1 + jitter)``.
        max_backoff: the cap on waits while the store fails (doubling from ``poll_interval``).
        pin: serve this version whatever the pointer says (also allows an undeployed model).
        warm_up: run the manifest's sample records through a new version before swapping.
        unload_first: drop the old version before loading the new one, for models too large
            to hold twice; predict answers NotReadyError in the gap, which is reported.
        allow_list: what step code a definition may name (the deployment's by default).
        batching: how concurrent predict calls share one prediction (see
            :mod:`model_steps.serving.batching`); None predicts each call on its own.
        strict_values: refuse text and booleans in number columns; False converts numeric
            text.
        on_reload: called with (old, new) version after each swap; old is None at first.
        on_error: called with each poll or load failure.

    Raises:
        NotDeployedError: ``spec`` does not say ``status: deployed`` and no version is pinned.
    """

    def __init__(
        self,
        spec: ModelSpec | None,
        store: ModelStore,
        *,
        name: str,
        poll_interval: float = 10.0,
        jitter: float = 0.1,
        max_backoff: float = 300.0,
        pin: int | None = None,
        warm_up: bool = True,
        unload_first: bool = False,
        allow_list: AllowList | None = None,
        batching: Batching | None = Batching(),  # noqa: B008 - frozen, so shared safely
        strict_values: bool = True,
        on_reload: ReloadHook | None = None,
        on_error: ErrorHook | None = None,
    ) -> None:
        if poll_interval <= 0 or not 0 <= jitter < 1 or max_backoff < poll_interval:
            raise ValueError(
                "expected poll_interval > 0, 0 <= jitter < 1 and max_backoff >= poll_interval; "
                f"got {poll_interval}, {jitter} and {max_backoff}"
            )
        self.name = name
        self.spec = spec
        self.store = store
        self.poll_interval, self.jitter, self.max_backoff = poll_interval, jitter, max_backoff
        self.warm_up, self.unload_first = warm_up, unload_first
        self.strict_values = strict_values
        self.on_reload, self.on_error = on_reload, on_error
        self._batcher = Batcher(batching, self._infer) if batching else None
        self._unbatched = 0
        self._count_lock = threading.Lock()
        allow = allow_list or load_settings().allow_list
        self._env = Environment(store, store.storage_options, allow)
        quiet_type_lookup()  # before any thread starts: see its docstring
        self._check_deployed(pin)
        self._pinned = pin
        self._loaded: _Version | None = None
        self._switching: tuple[int, int] | None = None
        self._pointer: Pointer | None = None
        self._tag: str | None = None
        self._failures = 0
        self._retry: _Retry | None = None
        self._stats = _Stats()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_definition(
        cls,
        path: str | Path,
        *,
        environ: Mapping[str, str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> ModelHandler:
        """A handler for the model a YAML definition describes, on its assets store.

        The file is validated like ``model-steps validate`` does; the store is the model's
        ``assets.root`` (or the deployment's default root) and ``directory``. The definition's
        folder joins the import path, as Airflow's DAGs folder does, for its step code.

        Raises:
            DefinitionError: the file is not a valid model definition.
            NotDeployedError: the model is not ``status: deployed`` and no ``pin`` is given.
            PermanentError: the model names an Airflow connection and no storage options.
        """
        path = Path(path)
        catalog = load_and_validate([path], load_settings(environ).environ)
        if catalog.broken or not catalog.models:
            raise DefinitionError(catalog.problems or [_not_a_model(path)])
        return cls.from_model(
            catalog.models[0], environ=environ, storage_options=storage_options, **options
        )

    @classmethod
    def from_model(
        cls,
        model: LoadedModel,
        *,
        environ: Mapping[str, str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> ModelHandler:
        """A handler for a loaded definition (see :meth:`from_definition`).

        ``model`` may be the last good definition of a file now broken (``model-steps serve``
        reads it from the parse cache): serving a store needs no valid file.

        Raises:
            NotDeployedError: the model is not ``status: deployed`` and no ``pin`` is given.
            PermanentError: the model names an Airflow connection and no storage options.
        """
        settings = load_settings(environ)
        spec, path = model.spec, model.path
        if spec.assets.conn_id and storage_options is None:
            raise PermanentError(
                f"model {spec.name!r} reads its store with Airflow connection "
                f"{spec.assets.conn_id!r}, which a handler cannot use without Airflow: pass "
                "storage_options (for example key, secret and client_kwargs for S3, or {} for "
                "fsspec's default credential chain)"
            )
        env = environment(spec, settings, storage_options or {})
        folders = (settings.dags_folder, path.parent)
        options.setdefault("allow_list", allow_list(settings.environ, folders))
        return cls(spec, env.store, name=spec.name, **options)

    @classmethod
    def from_store(
        cls,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        **options: Any,
    ) -> ModelHandler:
        """A handler for whatever the store at ``url`` publishes, without its definition.

        There is no definition to say whether the model is deployed: pointing a handler at a
        store is that decision. The steps come from each version's manifest, so versions
        published before manifests recorded them cannot be served this way. The name is the
        published model's (or the folder's, while nothing is published) unless given.
        """
        store = open_store(url, storage_options)
        return cls(None, store, name=name or _published_name(store), **options)

    # -- serving -----------------------------------------------------------------------------

    def predict(self, records: Records) -> Prediction:
        """Predict with the version being served; the whole call uses that one version.

        Raises:
            NotReadyError: no version is loaded (yet), or unload-first mode is between two.
            InvalidInputError: the records do not fit the version's input columns and types,
                or its model refused them.
        """
        loaded = self._loaded
        if loaded is None:
            raise NotReadyError(self._not_ready())

        def checked() -> Checked:
            return checked_records(records, loaded.schema, strict=self.strict_values)

        return self._predict_checked(loaded, checked)

    def incoming(self) -> AbstractContextManager[Arrival | None]:
        """Announce a request whose body is still on its way, for :meth:`predict_json`.

        A batch being formed waits a moment (the batching's ``max_wait``) for announced
        requests, so concurrent clients share predictions; leaving the block unused counts the
        request out.
        """
        return self._batcher.arriving() if self._batcher else nullcontext()

    def predict_json(
        self, body: bytes, *, max_rows: int | None = None, arrival: Arrival | None = None
    ) -> Prediction:
        """Predict the records of a JSON body: an array of records, or one record.

        The body is read against the version's columns as it parses (see
        :mod:`model_steps.serving.json_records`), so what a client sends costs little to refuse.
        ``arrival`` is what :meth:`incoming` gave when the request came in.

        Raises:
            NotReadyError: as :meth:`predict`.
            InvalidInputError: the body is not JSON records this version can use.
            TooManyRecordsError: it holds more than ``max_rows`` records (when given).
        """
        loaded = self._loaded
        if loaded is None:
            raise NotReadyError(self._not_ready())

        def checked() -> Checked:
            return json_frame(body, loaded.schema, strict=self.strict_values, max_rows=max_rows)

        return self._predict_checked(loaded, checked, arrival)

    async def predict_json_async(
        self, body: bytes, *, max_rows: int | None = None, arrival: Arrival | None = None
    ) -> Prediction:
        """:meth:`predict_json` for a caller on an event loop, holding no thread while it waits.

        The body is checked on the loop, so this is for small bodies (a few records, checked
        in microseconds); the prediction runs in a thread of the loop's executor, once per
        batch. Without batching, the whole call runs in that executor.
        """
        if self._batcher is None:
            call = functools.partial(self.predict_json, body, max_rows=max_rows, arrival=arrival)
            return await asyncio.get_running_loop().run_in_executor(None, call)
        loaded = self._loaded
        if loaded is None:
            raise NotReadyError(self._not_ready())
        found = json_frame(body, loaded.schema, strict=self.strict_values, max_rows=max_rows)
        output = await self._batcher.run_async(loaded, found.frame, arrival)
        return Prediction(self.name, loaded.number, with_carried(output, found.carried))

    def _predict_checked(
        self, loaded: _Version, checked: Callable[[], Checked], arrival: Arrival | None = None
    ) -> Prediction:
        """Predict what ``checked()`` returns, batched with other callers' when batching is on.

        Records are checked before they join a batch, so a bad one fails only its request. The
        carried columns never join a batch: they wait here and go back beside this call's rows.
        """
        carried: list[DataFrame | None] = []

        def model_input() -> DataFrame:
            found = checked()
            carried.append(found.carried)
            return found.frame

        if self._batcher is None:
            frame = model_input()
            with self._count_lock:
                self._unbatched += 1
            output = _infer(loaded, self.name, frame)
        else:
            output = self._batcher.run(loaded, model_input, arrival)
        return Prediction(self.name, loaded.number, with_carried(output, carried[0]))

    @property
    def batching(self) -> Batching | None:
        """How concurrent predict calls are batched (None: each on its own)."""
        return self._batcher.policy if self._batcher else None

    def _infer(self, loaded: _Version, frame: DataFrame) -> DataFrame:
        return _infer(loaded, self.name, frame)

    @property
    def ready(self) -> bool:
        """Whether predict answers now."""
        return self._loaded is not None

    @property
    def version(self) -> int | None:
        """The version being served."""
        loaded = self._loaded
        return loaded.number if loaded else None

    @property
    def schema(self) -> InputSchema | None:
        """The columns the version being served reads (None while none is loaded)."""
        loaded = self._loaded
        return loaded.schema if loaded else None

    @property
    def status(self) -> HandlerStatus:
        """A snapshot of the handler's state and counters.

        Read without the handler's lock, so health checks answer while a version loads.
        """
        stats, loaded = self._stats, self._loaded
        return HandlerStatus(
            model=self.name,
            ready=loaded is not None,
            version=loaded.number if loaded else None,
            pinned=self._pinned,
            loaded_at=stats.loaded_at,
            last_poll_at=stats.last_poll_at,
            last_poll_ok_at=stats.last_poll_ok_at,
            polls=stats.polls,
            poll_failures=stats.poll_failures,
            reloads=stats.reloads,
            reload_failures=stats.reload_failures,
            last_error=stats.last_error,
            last_reload_seconds=stats.last_reload_seconds,
            last_publish_to_serving_seconds=stats.last_publish_to_serving_seconds,
            unavailable_seconds=round(stats.unavailable_seconds, 6),
            versions_in_memory=(loaded is not None) + stats.loading,
            loaded_bytes=(loaded.size if loaded else 0) + stats.loading_bytes,
            poll_requests=stats.poll_requests,
            poll_bytes=stats.poll_bytes,
            predict_requests=self._batcher.requests if self._batcher else self._unbatched,
            predict_batches=self._batcher.batches if self._batcher else self._unbatched,
        )

    def metrics_text(self) -> str:
        """The status in Prometheus' text format, labelled ``model="<name>"``."""
        return metrics_text([self.status])

    # -- loading and polling -----------------------------------------------------------------

    def load(self) -> int:
        """Load the pinned version, else the current one, now; returns its number.

        Raises:
            NotReadyError: nothing is published yet.
            ModelStepsError: the store, the pointer, the manifest or an asset failed (the
                failure is also recorded in :attr:`status`).
        """
        with self._lock:
            if self._pinned is not None:
                self._install(self._pinned, None)
                return self._pinned
            try:
                pointer = self._read_pointer(since=None)
                if pointer is None:
                    raise NotReadyError(self._nothing_published())
            except Exception as error:
                self._record(error, "load")
                raise
            self._install(pointer.version, pointer)
            return pointer.version

    def poll_once(self) -> bool:
        """One poll: True when a new version was loaded and swapped in.

        Failures are recorded (and passed to ``on_error``), never raised: polling goes on.
        """
        with self._lock:
            self._stats.polls += 1
            self._stats.last_poll_at = _now()
            try:
                swapped = self._follow()
            except Exception as error:
                self._failures += 1
                self._stats.poll_failures += 1
                self._record(error, "poll")
                return False
            self._failures = 0
            self._stats.last_poll_ok_at = _now()
            if self._retry is None and self._loaded is not None:
                self._stats.last_error = None
            return swapped

    def pin(self, version: int | None) -> None:
        """Serve ``version`` whatever the pointer says; None follows the pointer again.

        Pinning loads the version now and raises if it cannot: the old version keeps serving,
        and the handler keeps following what it followed before (its pin, or the pointer).
        """
        with self._lock:
            self._check_deployed(version)
            before = self._pinned, self._retry, self._tag
            self._pinned, self._retry, self._tag = version, None, None
            if version is None:
                self.poll_once()
            elif self.version != version:
                try:
                    self._install(version, None)
                except Exception:
                    self._pinned, self._retry, self._tag = before
                    raise

    def start(self) -> Self:
        """Load (failures are recorded, and retried by polling) and start the poll thread.

        Raises:
            NotServableError: the handler is pinned to a version that was never published (the
                gate refused it, it waits for approval, or a person rejected it). Polling
                would never make it ready, so it fails here, as :meth:`pin` does, rather than
                start a handler whose every ``predict`` is a ``NotReadyError``.
        """
        with self._lock:
            if self._thread is not None:
                return self
            if self._loaded is None:
                try:
                    self.load()
                except NotServableError:
                    raise
                except Exception as error:
                    log.warning("%s: not serving yet: %s", self.name, error)
            # Each thread gets its own stop signal: one that outlives a timed-out stop() must
            # still end, not resume beside its successor.
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._poll_forever,
                args=(self._stopping,),
                name=f"model-steps-poll-{self.name}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling (the loaded version keeps answering predict).

        Takes no lock, so a stop (on SIGTERM, say) never waits for a version still loading.
        """
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    # -- internals ---------------------------------------------------------------------------

    def _poll_forever(self, stopping: threading.Event) -> None:
        while not stopping.wait(self._next_wait()):
            self.poll_once()

    def _next_wait(self) -> float:
        return poll_wait(
            self.poll_interval, self.max_backoff, self._failures, self.jitter, self._random
        )

    def _follow(self) -> bool:
        """Load the version the pin or the pointer names, unless served or waiting to retry."""
        if self._pinned is not None:
            pointer, wanted = None, self._pinned
        else:
            pointer = self._read_pointer(since=self._tag)
            if pointer is None and self._loaded is not None:
                raise PointerMissingError(
                    f"{self.store.url('current.json')} is missing: still serving version "
                    f"{self.version}; publish a version or roll back to restore the pointer"
                )
            if pointer is None:  # a model not trained yet: normal, so no backoff
                self._stats.last_error = self._nothing_published()
                return False
            wanted = pointer.version
        if self.version == wanted:
            self._retry = None
            return False
        retry = self._retry
        if retry is not None and retry.version == wanted and time.monotonic() < retry.due:
            return False
        try:
            self._install(wanted, pointer)
        except Exception:  # recorded by _install; retried with backoff, not at every poll
            attempts = retry.attempts + 1 if retry and retry.version == wanted else 1
            wait = poll_wait(self.poll_interval, self.max_backoff, attempts)
            self._retry = _Retry(wanted, attempts, time.monotonic() + wait)
            return False
        self._retry = None
        return True

    def _read_pointer(self, since: str | None) -> Pointer | None:
        """The pointer, read only when its tag moved since ``since`` (the last one read)."""
        read: PointerRead | None = self.store.read_pointer(since=since)
        self._stats.poll_requests += read.requests if read else 1
        if read is None:
            return self._pointer
        self._stats.poll_bytes += read.size
        if read.pointer is not None:
            self._pointer, self._tag = read.pointer, read.tag
        return read.pointer

    def _install(self, version: int, pointer: Pointer | None) -> None:
        """Load ``version`` and swap it in; on failure record it and re-raise."""
        started = time.perf_counter()
        old = self.version
        try:
            manifest = self._manifest(version)
            if pointer is None:  # a pin; the pointer names published versions only
                check_pinnable(self.store, manifest)
            if self.unload_first and old is not None:
                self._load_unloading_first(manifest, old)
            else:
                self._loaded = self._build(manifest)
        except Exception as error:
            self._stats.reload_failures += 1
            self._record(error, f"load version {version}")
            raise
        finally:
            release_freed_memory()
        stats = self._stats
        stats.reloads += 1
        stats.loaded_at = _now()
        stats.last_reload_seconds = round(time.perf_counter() - started, 6)
        if old is not None and pointer is not None and pointer.rolled_back_from is None:
            # Only a swap measures publish -> serving; at start-up it would be the version's age.
            published = datetime.fromisoformat(pointer.published_at)
            stats.last_publish_to_serving_seconds = (_now() - published).total_seconds()
        log.info("%s: serving version %d (was %s)", self.name, version, old)
        self._call(self.on_reload, old, version)

    def _load_unloading_first(self, manifest: Manifest, old: int) -> None:
        """Free the old version before loading the new; the gap is counted, not hidden.

        The manifest and every asset's checksum are checked first, so a pointer to nothing or
        a corrupt or missing asset never empties the handler (nor does each retry of one); if
        the new version still fails, the old one is loaded back.
        """
        for step in manifest.steps:
            if step.asset is not None:
                self.store.verify_asset(step.asset)
        gap = time.monotonic()
        self._switching, self._loaded = (old, manifest.version), None
        try:
            self._loaded = self._build(manifest)
        except Exception:
            self._loaded = self._build(self._manifest(old))
            raise
        finally:
            self._switching = None
            self._stats.unavailable_seconds += time.monotonic() - gap

    def _manifest(self, version: int) -> Manifest:
        """The version's manifest, if this model's: another model may publish into the store."""
        manifest = self.store.manifest(version)
        if manifest.model != self.name:
            raise StoreOwnedError(
                f"version {version} in {self.store.url()} is model {manifest.model!r}'s, "
                f"not {self.name!r}'s: it is never served as {self.name!r}",
                owner=manifest.model,
                model=self.name,
            )
        return manifest

    def _build(self, manifest: Manifest) -> _Version:
        """Load, verify and (optionally) warm up a version beside the one being served."""
        version = manifest.version
        size = sum(s.asset.size for s in manifest.steps if s.asset)
        self._stats.loading, self._stats.loading_bytes = True, size
        try:
            pipeline = version_pipeline(manifest, self._env, self.spec)
            schema = InputSchema.of(manifest, pipeline[0].step)
            loaded = _Version(version, pipeline, schema, size)
            if self.warm_up and manifest.sample_records:
                _predict(loaded, self.name, manifest.sample_records, strict=False)
            return loaded
        finally:
            self._stats.loading, self._stats.loading_bytes = False, 0

    def _check_deployed(self, pin: int | None) -> None:
        if self.spec is not None and self.spec.status != "deployed" and pin is None:
            raise NotDeployedError(
                f"model {self.name!r} has status {self.spec.status!r}: handlers serve only "
                "deployed models; set 'status: deployed' in its definition, or pin a version "
                "to serve it anyway"
            )

    def _record(self, error: Exception, action: str) -> None:
        serving = f"still serving version {self.version}" if self._loaded else "not serving"
        self._stats.last_error = f"cannot {action}: {error}"
        log.warning("%s: cannot %s (%s): %s", self.name, action, serving, error)
        self._call(self.on_error, error)

    def _call(self, hook: Callable[..., None] | None, *args: Any) -> None:
        """Run a user hook; its failure is logged, never allowed to stop serving."""
        if hook is None:
            return
        try:
            hook(*args)
        except Exception:
            log.exception("%s: the %s hook failed", self.name, getattr(hook, "__name__", "user"))

    def _nothing_published(self) -> str:
        return f"nothing is published for {self.name} at {self.store.url()} yet: train it first"

    def _not_ready(self) -> str:
        if self._switching is not None:
            old, new = self._switching
            return (
                f"{self.name} is switching from version {old} to {new} (unload-first mode): "
                "retry in a moment"
            )
        error = self._stats.last_error
        return f"{self.name} has no version loaded yet" + (f": {error}" if error else "")


def poll_wait(
    interval: float,
    max_backoff: float,
    failures: int,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds before the next poll: doubled per consecutive failure, capped, then jittered.

    The jitter (``uniform(1 - jitter, 1 + jitter)``) keeps a fleet from polling in step. The
    same doubling spaces the retries of a version that failed to load.
    """
    base = min(interval * 2.0 ** min(failures, 32), max_backoff)
    return base * (rng or random.Random()).uniform(1 - jitter, 1 + jitter) if jitter else base


def _predict(loaded: _Version, name: str, records: Records, strict: bool) -> Prediction:
    """Check the records against the version's schema and run its whole pipeline."""
    found = checked_records(records, loaded.schema, strict=strict)
    output = with_carried(_infer(loaded, name, found.frame), found.carried)
    return Prediction(name, loaded.number, output)


def _infer(loaded: _Version, name: str, frame: DataFrame) -> DataFrame:
    """The version's predictions for checked records; what its model refuses is the caller's."""
    try:
        return infer_frame(loaded.pipeline, frame)
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"version {loaded.number} of {name} cannot predict these records: {error}"
        ) from error


def _published_name(store: ModelStore) -> str:
    read = store.read_pointer()
    assert read is not None
    if read.pointer is None:
        return store.root.rsplit("/", 1)[-1]
    return store.manifest(read.pointer.version).model


def _not_a_model(path: Path) -> Problem:
    return Problem(
        str(path),
        0,
        0,
        "",
        "not_a_model",
        "not a model definition: expected 'apiVersion: model-steps/v1' and 'kind: Model'",
    )


def _now() -> datetime:
    return datetime.now(UTC)


# -- several models in one process -------------------------------------------------------------


class HandlerSet(_Serving, Mapping[str, ModelHandler]):
    """Handlers for several models in one process, by model name."""

    def __init__(self, handlers: Iterable[ModelHandler]) -> None:
        self._handlers: dict[str, ModelHandler] = {}
        for handler in handlers:
            if handler.name in self._handlers:
                raise ValueError(f"two handlers serve model {handler.name!r}: names must differ")
            self._handlers[handler.name] = handler

    @classmethod
    def from_definitions(cls, paths: Iterable[str | Path], **options: Any) -> HandlerSet:
        """One handler per definition file (see :meth:`ModelHandler.from_definition`)."""
        return cls(ModelHandler.from_definition(path, **options) for path in paths)

    def __getitem__(self, name: str) -> ModelHandler:
        try:
            return self._handlers[name]
        except KeyError:
            close = did_you_mean(name, self._handlers)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise UnknownModelError(
                f"no model {name!r} is served here{hint}; models: {', '.join(self) or 'none'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)

    def predict(self, name: str, records: Records) -> Prediction:
        """Predict with the named model."""
        return self[name].predict(records)

    def start(self) -> Self:
        """Start every handler."""
        for handler in self.values():
            handler.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every handler."""
        for handler in self.values():
            handler.stop(timeout)

    def metrics_text(self) -> str:
        """Every model's metrics, one block per metric name."""
        return metrics_text([handler.status for handler in self.values()])
