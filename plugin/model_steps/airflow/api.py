"""The Models API the plugin mounts on Airflow's API server (``/model-steps``).

What a user sees of each model joins three sources, each read live: the definitions Airflow's
DAG processor stored in the metadata DB from whichever DAG bundle holds them (an outline in each
model's train DAG, so this server needs no DAG file), overlaid by this server's own DAGs folder
when it has one; Airflow's pause state and last runs (a toggle in the UI shows at once); and the
model's store (versions, metrics, card). A store
that cannot be reached only marks its own model. Every route sits behind Airflow's own
authentication (a JWT as a bearer token or the UI's session cookie), because Airflow does not
guard plugin apps by itself; changes also need edit permission on both of the model's DAGs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from airflow._shared.secrets_masker import redact
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, bearer_scheme, get_user
from airflow.api_fastapi.logging.decorators import action_logging
from airflow.configuration import conf

# The metadata DB's ORM models, read and written through the API server's own session exactly as
# Airflow's public routes do (routes/public/dags.py). They are server-side models, not the
# deprecated DAG-authoring imports: DAGs themselves are built with airflow.sdk (dags.py).
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from model_steps.airflow.api_models import (
    ERROR_RESPONSES,
    CommentOut,
    DagKind,
    DagState,
    DecisionRequest,
    DecisionResult,
    ErrorBody,
    EvaluationSummary,
    InferProgress,
    InvalidFile,
    LastRun,
    ModelDetail,
    ModelList,
    ModelSummary,
    PauseResult,
    ProblemOut,
    RollbackRequest,
    RollbackResult,
    RunProgress,
    ScheduleStatus,
    ScheduleText,
    StepOut,
    StepProgress,
    VersionCard,
    VersionList,
    VersionSummary,
)
from model_steps.airflow.connections import model_storage_options
from model_steps.airflow.csrf import json_from_same_origin
from model_steps.airflow.db_catalog import StoredOutlines, loader_errors
from model_steps.airflow.events import announce_version
from model_steps.airflow.masking import MaskedAnswers
from model_steps.airflow.outline import (
    InvalidOutline,
    ModelOutline,
    invalid_outline,
    model_outline,
)
from model_steps.airflow.plan import INFER_SUFFIX, TRAIN_SUFFIX, invalid_dag_id
from model_steps.airflow.shards import parse_warnings
from model_steps.definition.loader import Catalog, find_definition_files, load_and_validate
from model_steps.definition.owners import NameRecord, relative_name
from model_steps.errors import (
    CorruptDocumentError,
    DecisionConflictError,
    ModelStepsError,
    NotServableError,
    PublishConflictError,
    StoreOwnedError,
    StoreUnavailableError,
    format_problem,
)
from model_steps.runtime.context import Environment, model_store
from model_steps.runtime.ownership import check_definition_owner
from model_steps.settings import Settings, load_settings
from model_steps.store.manifest import (
    Decision,
    EvaluationRecord,
    Manifest,
    Pointer,
    published_time,
    version_status,
)
from model_steps.store.model_store import CARD, ModelStore

__all__ = ["create_app"]

log = logging.getLogger(__name__)

UI_FOLDER = Path(__file__).with_name("ui")
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M3 3v18h18"/>'
    '<path d="m7 14 4-4 4 4 5-6"/></svg>'
)
"""The "Models" entry's icon in Airflow's navigation (served here: nothing loads from elsewhere)."""
LOGIN_LANDING = "/plugin/models"
"""Where a browser lands after signing in: the Models page inside Airflow's UI (its url_route)."""
STORE_TIMEOUT_SECONDS = 10.0
"""How long a listing waits for the stores; a slower one shows as unavailable, not as a hang."""
_STORE_THREADS = 8


# -- definitions: from Airflow's DB, and from this server's own DAGs folder if it has one -----


@dataclass(frozen=True)
class Listing:
    """Every model and broken file a listing shows, each with the bundle Airflow read it from."""

    models: tuple[tuple[ModelOutline, str | None], ...]
    invalid: tuple[tuple[InvalidOutline, str | None], ...]

    def find(self, name: str) -> tuple[ModelOutline, str | None] | None:
        return next((m for m in self.models if m[0].name == name), None)


class _Definitions:
    """The definitions Airflow parsed (the metadata DB), and those this server can read itself.

    Airflow's API server reads DAGs from the DB only, and the official Helm chart gives it no
    DAG files: what the DAG processor stored is the listing (:mod:`.db_catalog`). When this
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
        catalog = self.catalog(session)
        found = catalog.find(name)
        if found is not None:
            return found
        broken = next((b for b, _ in catalog.invalid if b.name == name), None)
        if broken is None:
            raise _not_found(name)
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
                    )
                    if key
                    else Catalog((), ())
                )
                self._local = (
                    [model_outline(m.spec, self.relative(m.path)) for m in catalog.models],
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


# -- Airflow's view: pause state and last runs -------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _last_runs(session: Session, ids: Sequence[str]) -> dict[str, LastRun]:
    newest = select(func.max(DagRun.id)).where(DagRun.dag_id.in_(ids)).group_by(DagRun.dag_id)
    runs = session.scalars(select(DagRun).where(DagRun.id.in_(newest)))
    return {
        run.dag_id: LastRun(
            run_id=run.run_id,
            state=str(run.state) if run.state is not None else None,
            run_after=_iso(run.run_after),
            start_date=_iso(run.start_date),
            end_date=_iso(run.end_date),
        )
        for run in runs
    }


def _dag_states(session: Session, models: Iterable[ModelOutline]) -> dict[str, DagState]:
    """Every model DAG's state, in two queries for the whole listing."""
    kinds: dict[str, DagKind] = {
        dag_id: cast(DagKind, kind) for model in models for dag_id, kind in model.dags.items()
    }
    ids = list(kinds)
    rows = session.execute(
        select(DagModel.dag_id, DagModel.is_paused).where(DagModel.dag_id.in_(ids))
    )
    paused = {row.dag_id: row.is_paused for row in rows}
    runs = _last_runs(session, ids)
    return {
        dag_id: DagState(
            dag_id=dag_id,
            kind=kinds[dag_id],
            paused=paused.get(dag_id),
            url=f"/dags/{dag_id}",
            last_run=runs.get(dag_id),
        )
        for dag_id in ids
    }


def _schedule_status(dags: Sequence[DagState]) -> ScheduleStatus:
    known = [d.paused for d in dags if d.paused is not None]
    if not known:
        return "not in Airflow yet"
    if all(known):
        return "paused"
    return "active" if not any(known) else "partly paused"


# -- the store's view: versions, metrics, card ---------------------------------------------------


def _open_store(model: ModelOutline, settings: Settings) -> ModelStore:
    """The model's store, with its connection's credentials read now (they may have changed)."""
    conn_id = settings.connection(model.assets.conn_id)
    try:
        options = model_storage_options(conn_id)
    except Exception as error:  # the connection is missing or its backend is down
        raise StoreUnavailableError(f"cannot read connection {conn_id!r}: {error}") from error
    root = model.assets.root or settings.assets_root
    steps = [step.assets_root for step in model.steps]
    return model_store(model.name, root, model.assets.directory, steps, options)


@dataclass(frozen=True)
class _Live:
    """What the store says about a model right now."""

    version: int | None = None
    published_at: str | None = None
    versions: int = 0
    metrics: dict[str, dict[str, float]] | None = None
    error: str | None = None


def _live(store: ModelStore) -> _Live:
    pointer = store.pointer()
    versions = store.versions()
    if pointer is None:
        return _Live(versions=len(versions))
    manifest = store.manifest(pointer.version)
    return _Live(pointer.version, pointer.published_at, len(versions), manifest.metrics)


def _live_or_error(model: ModelOutline, settings: Settings) -> _Live:
    """Never raises: one model's broken store must not hide the others."""
    return _live_and_card(model, settings, card=False)[0]


def _live_and_card(model: ModelOutline, settings: Settings, card: bool) -> tuple[_Live, str | None]:
    """The store's facts and (if asked) the live card, from one opened store; never raises."""
    try:
        store = _open_store(model, settings)
        live = _live(store)
        return live, _card(store, live.version) if card else None
    except Exception as error:
        return _Live(error=_describe(error)), None


def _describe(error: BaseException) -> str:
    known = (ModelStepsError, FileNotFoundError, PermissionError)
    return str(error) if isinstance(error, known) else f"{type(error).__name__}: {error}"


def _live_all(models: Sequence[ModelOutline], definitions: _Definitions) -> list[_Live]:
    """Ask every store at once; a store that does not answer in time is shown as such."""
    if not models:
        return []
    settings = definitions.settings
    futures = [definitions.stores.submit(_live_or_error, model, settings) for model in models]
    done, _ = wait(futures, timeout=STORE_TIMEOUT_SECONDS)
    late = _Live(error=f"the store did not answer within {STORE_TIMEOUT_SECONDS:g}s")
    return [future.result() if future in done else late for future in futures]


def _card(store: ModelStore, version: int | None) -> str | None:
    if version is None:
        return None
    try:
        return store.read_bytes(store.url("versions", str(version), CARD)).decode()
    except FileNotFoundError:
        return None


# -- assembling the documents --------------------------------------------------------------------


def _schedule_text(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _summary(
    listed: tuple[ModelOutline, str | None], dags: dict[str, DagState], live: _Live
) -> ModelSummary:
    model, bundle = listed
    states = [dags[dag_id] for dag_id in model.dags]
    return ModelSummary(
        name=model.name,
        description=model.description,
        tags=list(model.tags),
        domain=model.domain,
        status=model.status,
        definition_version=model.version,
        file=model.file,
        bundle=bundle,
        schedule=ScheduleText(
            train=_schedule_text(model.schedule.train),
            infer=_schedule_text(model.schedule.infer),
            evaluate=_schedule_text(model.schedule.evaluate),
        ),
        schedule_status=_schedule_status(states),
        dags=states,
        live_version=live.version,
        published_at=live.published_at,
        versions=live.versions,
        metrics=live.metrics or {},
        store_error=live.error,
    )


def _invalid(catalog: Listing) -> list[InvalidFile]:
    invalid = []
    for broken, bundle in catalog.invalid:
        file = broken.file
        problems = [p.problem(file) for p in broken.problems]
        invalid.append(
            InvalidFile(
                file=file,
                bundle=bundle,
                dag_id=invalid_dag_id(file),
                problems=[
                    ProblemOut(
                        line=p.line or None,
                        column=p.column or None,
                        field=p.field or None,
                        message=p.message,
                        text=format_problem(p),
                    )
                    for p in problems
                ],
            )
        )
    return invalid


def _detail(model: ModelOutline, summary: ModelSummary, card: str | None) -> ModelDetail:
    return ModelDetail(
        **dict(summary),
        comments=[CommentOut(date=c.date, author=c.author, text=c.text) for c in model.comments],
        intended_use=model.intended_use,
        limitations=model.limitations,
        license=model.license,
        metadata=dict(model.metadata),
        parameters=dict(model.parameters),
        steps=[StepOut(id=s.id, name=s.name, description=s.description) for s in model.steps],
        card=card,
    )


def _version_summary(store: ModelStore, version: int, current: int | None) -> VersionSummary:
    manifest = store.manifest(version)
    decision = store.decision(version)
    status = version_status(manifest, decision, current)
    return VersionSummary(
        version=manifest.version,
        published_at=published_time(manifest, decision),
        run_id=manifest.run_id,
        definition_version=manifest.definition_version,
        spec_hash=manifest.spec_hash,
        metrics=manifest.metrics,
        comments=manifest.comments,
        is_current=manifest.version == current,
        status=status,
        reason=_reason(manifest, decision),
        gate=manifest.gate,
        decision=decision,
        evaluations=[_evaluation_summary(e) for e in store.evaluations(version)],
    )


def _reason(manifest: Manifest, decision: Decision | None) -> str | None:
    if decision is not None:
        return f"{decision.action} by {decision.by}" + (
            f": {decision.reason}" if decision.reason else ""
        )
    return manifest.gate.reason if manifest.gate is not None else None


def _evaluation_summary(record: EvaluationRecord) -> EvaluationSummary:
    return EvaluationSummary(
        run_id=record.run_id,
        evaluated_at=record.end_date_time,
        metrics={m.name: m.value for m in record.performance},
        row_count=record.row_count,
        degraded=record.degraded,
        reasons=record.reasons,
        drift=record.drift,
    )


# -- permissions and changes -----------------------------------------------------------------------


def _may(method: ResourceMethod, dag_id: str, user: BaseUser) -> bool:
    return get_auth_manager().is_authorized_dag(
        method=method, details=DagDetails(id=dag_id), user=user
    )


def _not_found(name: str) -> HTTPException:
    """The one answer for a model that does not exist and for one the user may not read."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no model named {name!r}")


def _require(model: ModelOutline, user: BaseUser, method: ResourceMethod) -> None:
    """A model is its DAGs: seeing it needs read access to both, changing it edit access.

    A model the user may not read is not found (404), exactly as one that does not exist, so
    the answer never tells which models exist; one they may read but not change is a 403.
    """
    refused = [dag_id for dag_id in model.dags if not _may(method, dag_id, user)]
    if refused and method == "GET":
        raise _not_found(model.name)
    if refused:
        verb = "edit" if method == "PUT" else "read"
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"user {user.get_name()!r} may not {verb} DAG(s) {', '.join(refused)} of model "
            f"{model.name!r}",
        )


def _set_paused(session: Session, model: ModelOutline, paused: bool) -> None:
    """Set ``is_paused`` on both DAGs, as Airflow's own ``PATCH /api/v2/dags/{id}`` does."""
    ids = list(model.dags)
    dags = session.scalars(select(DagModel).where(DagModel.dag_id.in_(ids))).all()
    missing = sorted(set(ids) - {dag.dag_id for dag in dags})
    if missing:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"DAG(s) {', '.join(missing)} of model {model.name!r} are not in Airflow yet: "
            "wait for the DAG processor to parse the definition",
        )
    for dag in dags:
        dag.is_paused = paused
    session.flush()


def _rollback(store: ModelStore, name: str, version: int) -> RollbackResult:
    store.check_owner()
    _complete(store, name, version)
    current = store.pointer()
    if current is not None and current.version == version:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"version {version} of {name!r} is already the live version"
        )
    try:
        pointer = store.rollback(version)
    except (PublishConflictError, NotServableError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return RollbackResult(
        model=name, version=pointer.version, previous=current.version if current else None
    )


# -- errors as JSON with a clear message -----------------------------------------------------------


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


# -- the app -------------------------------------------------------------------------------------


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
        openapi_url=None,  # served by a route below, behind the same authentication
    )
    app.state.definitions = _Definitions(settings or load_settings())
    app.state.base_url = conf.get("api", "base_url", fallback="")
    app.add_middleware(MaskedAnswers)
    app.add_exception_handler(StoreUnavailableError, _store_error)
    app.add_exception_handler(CorruptDocumentError, _store_error)
    app.add_exception_handler(StoreOwnedError, _owned_elsewhere)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _refused)
    app.add_exception_handler(Exception, _unexpected_error)
    app.include_router(router)
    return app


def _definitions(request: Request) -> _Definitions:
    definitions: _Definitions = request.app.state.definitions
    return definitions


def _listed(
    name: str, definitions: DefinitionsDep, user: GetUserDep, session: SessionDep
) -> tuple[ModelOutline, str | None]:
    # Checked before the catalog is read: whether a name exists, or its file is broken, is
    # told only to who may read the DAGs it would have.
    if not _may("GET", name + TRAIN_SUFFIX, user):
        raise _not_found(name)
    listed = definitions.model(name, session)
    _require(listed[0], user, "GET")
    return listed


def _model(listed: ListedDep) -> ModelOutline:
    return listed[0]


def _change(action: str) -> list[Any]:
    """A change's guards: JSON from Airflow's own pages (CSRF), then Airflow's audit log."""
    return [Depends(json_from_same_origin), Depends(action_logging(action))]


DefinitionsDep = Annotated[_Definitions, Depends(_definitions)]
ListedDep = Annotated[tuple[ModelOutline, str | None], Depends(_listed)]
ModelDep = Annotated[ModelOutline, Depends(_model)]
router = APIRouter()


@router.get("/models", summary="Every model and every definition file that failed")
def list_models(definitions: DefinitionsDep, session: SessionDep, user: GetUserDep) -> ModelList:
    """Models with live pause state, last runs and store facts; broken files with problems.

    Only what the user may read, as Airflow's own DAG listing filters by permission.
    """
    catalog = definitions.catalog(session)
    listed = [m for m in catalog.models if all(_may("GET", d, user) for d in m[0].dags)]
    models = [model for model, _ in listed]
    dags = _dag_states(session, models)
    lives = _live_all(models, definitions)
    return ModelList(
        models=[_summary(m, dags, live) for m, live in zip(listed, lives, strict=True)],
        invalid=[f for f in _invalid(catalog) if _may("GET", f.dag_id, user)],
        parse_warnings=parse_warnings(definitions.settings),
    )


@router.get("/models/{name}", summary="One model in detail, with its live version's card")
def get_model(listed: ListedDep, definitions: DefinitionsDep, session: SessionDep) -> ModelDetail:
    """The listing's facts plus documentation, parameters, steps and the model card."""
    model = listed[0]
    dags = _dag_states(session, [model])
    live, card = _live_and_card(model, definitions.settings, card=True)
    return _detail(model, _summary(listed, dags, live), card)


@router.get("/models/{name}/progress", summary="Rows done of rows total in running infer runs")
def get_progress(
    model: ModelDep, definitions: DefinitionsDep, session: SessionDep
) -> InferProgress:
    """Each running infer run's steps: partitions and rows done, read from the run's scratch."""
    from model_steps.runtime.context import RunInfo
    from model_steps.runtime.partitioned import run_progress

    dag_id = model.name + INFER_SUFFIX
    running = session.scalars(
        select(DagRun.run_id).where(DagRun.dag_id == dag_id, DagRun.state == "running")
    ).all()
    if not running:
        return InferProgress(runs=[])
    store = _open_store(model, definitions.settings)  # the connection's credentials, now
    env = Environment(store, store.storage_options, definitions.settings.allow_list)
    steps = [step.id for step in model.steps]
    return InferProgress(
        runs=[
            RunProgress(
                run_id=run_id,
                steps=[
                    StepProgress(**vars(p))
                    for p in run_progress(steps, RunInfo(dag_id, run_id), env)
                ],
            )
            for run_id in sorted(running)
        ]
    )


@router.get("/models/{name}/versions", summary="A model's published versions, newest first")
def list_versions(model: ModelDep, definitions: DefinitionsDep) -> VersionList:
    """Every complete version with its metrics, and which one handlers serve."""
    store = _open_store(model, definitions.settings)
    pointer = store.pointer()
    current = pointer.version if pointer else None
    return VersionList(
        model=model.name,
        current=current,
        versions=[_version_summary(store, v, current) for v in reversed(store.versions())],
    )


@router.get("/models/{name}/versions/{version}", summary="The manifest of one version")
def get_version(model: ModelDep, version: int, definitions: DefinitionsDep) -> Manifest:
    """Everything recorded about the version: assets with checksums, metrics, lineage."""
    store = _open_store(model, definitions.settings)
    if version not in store.versions():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"model {model.name!r} has no complete version {version}",
        )
    return _redacted(store.manifest(version))


@router.get("/models/{name}/versions/{version}/card", summary="The model card of one version")
def get_card(model: ModelDep, version: int, definitions: DefinitionsDep) -> VersionCard:
    """MODEL_CARD.md as written with the version: published, refused or waiting alike."""
    store = _open_store(model, definitions.settings)
    _complete(store, model.name, version)
    return VersionCard(model=model.name, version=version, card=store.card(version))


def _complete(store: ModelStore, name: str, version: int) -> None:
    complete = store.versions()
    if version not in complete:
        listing = ", ".join(map(str, complete)) or "none"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"model {name!r} has no complete version {version} (complete versions: {listing})",
        )


def _redacted(manifest: Manifest) -> Manifest:
    """The manifest with values under sensitive names masked, as Airflow's API masks them.

    A version records each step's rendered init and the run's parameters; a key named like a
    secret (``api_key``, ``password``, ``token``...) must not reach every viewer.
    """
    return Manifest.model_validate(redact(manifest.model_dump(mode="json")))


@router.post(
    "/models/{name}/rollback",
    summary="Serve an older complete version again",
    dependencies=_change("model_steps_rollback"),
    responses={409: {"description": "Already live, or a publish won the race", "model": ErrorBody}},
)
def rollback(
    model: ModelDep, body: RollbackRequest, user: GetUserDep, definitions: DefinitionsDep
) -> RollbackResult:
    """Moves the model's pointer back; nothing is rewritten, handlers reload on their next poll."""
    _require(model, user, "PUT")
    store = _open_store(model, definitions.settings)
    check_definition_owner(store, Path(model.file), None, definitions.settings)
    return _rollback(store, model.name, body.version)


DECISION_CONFLICTS: dict[int | str, dict[str, Any]] = {
    409: {"description": "Not waiting for approval, or already decided", "model": ErrorBody}
}


@router.post(
    "/models/{name}/versions/{version}/approve",
    summary="Approve a candidate that waits for approval: it goes live",
    dependencies=_change("model_steps_approve"),
    responses=DECISION_CONFLICTS,
)
def approve(
    model: ModelDep,
    version: int,
    body: DecisionRequest,
    user: GetUserDep,
    definitions: DefinitionsDep,
    session: SessionDep,
) -> DecisionResult:
    """Records the approval, moves the pointer and sends the model's Asset event."""
    store, by = _decision(
        model, version, user, definitions, lambda s, by: s.approve(version, by, body.reason)
    )
    live = store.pointer()
    announced = (
        live is not None
        and live.version == version
        and announce_version(session, model.name, version, live.manifest, by)
    )
    return _decided(model, version, "approved", by, live, announced)


@router.post(
    "/models/{name}/versions/{version}/reject",
    summary="Turn down a candidate that waits for approval",
    dependencies=_change("model_steps_reject"),
    responses=DECISION_CONFLICTS,
)
def reject(
    model: ModelDep,
    version: int,
    body: DecisionRequest,
    user: GetUserDep,
    definitions: DefinitionsDep,
) -> DecisionResult:
    """Records the rejection and its reason; the candidate is never served."""
    reason = (body.reason or "").strip()
    if not reason:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "say why the candidate is rejected: reason"
        )
    store, by = _decision(
        model, version, user, definitions, lambda s, by: s.reject(version, by, reason)
    )
    return _decided(model, version, "rejected", by, store.pointer(), announced=False)


def _decision(
    model: ModelOutline,
    version: int,
    user: BaseUser,
    definitions: _Definitions,
    act: Callable[[ModelStore, str], Any],
) -> tuple[ModelStore, str]:
    """Record a person's decision on a complete version: edit rights first, 409 on a refusal."""
    _require(model, user, "PUT")
    store = _open_store(model, definitions.settings)
    check_definition_owner(store, Path(model.file), None, definitions.settings)
    _complete(store, model.name, version)
    by = user.get_name()
    try:
        act(store, by)
    except (NotServableError, DecisionConflictError, PublishConflictError) as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    return store, by


def _decided(
    model: ModelOutline,
    version: int,
    action: Literal["approved", "rejected"],
    by: str,
    live: Pointer | None,
    announced: bool,
) -> DecisionResult:
    return DecisionResult(
        model=model.name,
        version=version,
        action=action,
        by=by,
        live_version=live.version if live else None,
        announced=announced,
    )


@router.post(
    "/models/{name}/pause",
    summary="Pause the model's DAGs' schedules",
    dependencies=_change("model_steps_pause"),
)
def pause(model: ModelDep, user: GetUserDep, session: SessionDep) -> PauseResult:
    """Pauses the train and infer DAGs, as the Airflow UI's toggle would."""
    return _pause_or_resume(model, user, session, paused=True)


@router.post(
    "/models/{name}/resume",
    summary="Resume the model's DAGs' schedules",
    dependencies=_change("model_steps_resume"),
)
def resume(model: ModelDep, user: GetUserDep, session: SessionDep) -> PauseResult:
    """Un-pauses the train and infer DAGs, as the Airflow UI's toggle would."""
    return _pause_or_resume(model, user, session, paused=False)


def _pause_or_resume(
    model: ModelOutline, user: BaseUser, session: Session, paused: bool
) -> PauseResult:
    _require(model, user, "PUT")
    _set_paused(session, model, paused)
    return PauseResult(model=model.name, dags=list(_dag_states(session, [model]).values()))


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
