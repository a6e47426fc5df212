"""``model-steps serve``: a small HTTP server around real-time handlers.

One process serves one model (``POST /predict``, ``GET /version``) or several (``POST
/models/{name}/predict``, ``GET /models/{name}/version``; these also work for a single model).
``GET /health`` answers 200 only once every model has a version loaded, so a load balancer sends
no traffic to a server that cannot answer yet; ``GET /metrics`` is Prometheus text.

Bad input is the client's problem, never the server's: every request is read with a size cap,
parsed, checked and predicted inside a guard that turns any failure into a JSON ``{"detail":
...}`` answer (422 for records the model cannot use, 413 for too large a request, 503 while no
version is loaded, 404 for an unknown model). Airflow is not imported here: a serving fleet
installs the package without it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from model_steps.errors import InvalidInputError, NotReadyError, UnknownModelError
from model_steps.serving.handler import HandlerSet, ModelHandler
from model_steps.serving.memory import limit_malloc_arenas
from model_steps.serving.status import HandlerStatus

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ROWS",
    "ErrorResponse",
    "HealthResponse",
    "ModelHealth",
    "PredictResponse",
    "create_app",
    "run",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 10 * 2**20
DEFAULT_MAX_ROWS = 100_000
RETRY_AFTER_SECONDS = 1
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- what the endpoints answer (typed, so /openapi.json documents it) ------------------------


class PredictResponse(BaseModel):
    """Predictions, with the version that made them so a client can tie an answer to a model."""

    model: str
    version: int
    rows: int
    predictions: list[Any]
    """One value per record: a scalar for a one-column output, else an object per record."""


class ModelHealth(BaseModel):
    """One model's readiness, with the reason when it is not ready."""

    ready: bool
    version: int | None
    last_error: str | None


class HealthResponse(BaseModel):
    """Ready only when every model served here has a version loaded."""

    status: Literal["ready", "not ready"]
    models: dict[str, ModelHealth]


class ErrorResponse(BaseModel):
    """Every error answer: one message saying what was wrong and what is expected."""

    detail: str


RECORDS_BODY: dict[str, Any] = {
    "required": True,
    "description": "A JSON array of records (one object per row, one key per input column), "
    "or a single record.",
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": {"type": "object"}, "minItems": 1},
                    {"type": "object"},
                ]
            },
            "example": [{"feature_a": 1.0, "feature_b": "x"}],
        }
    },
}
PREDICT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No model of that name is served here."},
    413: {
        "model": ErrorResponse,
        "description": "The body or the number of records is over the server's limit.",
    },
    422: {
        "model": ErrorResponse,
        "description": "Malformed JSON, or records the model cannot "
        "use (missing or unknown columns, wrong types, no records).",
    },
    503: {"model": ErrorResponse, "description": "No version is loaded yet; retry later."},
}


# -- the app ---------------------------------------------------------------------------------


def create_app(
    handlers: HandlerSet | ModelHandler,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> FastAPI:
    """The HTTP app for ``handlers``; it starts them when it starts and stops them when it stops.

    The handlers start in a background thread, so the server listens (and answers 503) while
    the first version loads, instead of refusing connections.
    """
    served = handlers if isinstance(handlers, HandlerSet) else HandlerSet([handlers])
    counter = _RequestCounter()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        starter = threading.Thread(target=served.start, name="model-steps-start", daemon=True)
        starter.start()
        try:
            yield
        finally:
            await run_in_threadpool(_stop, starter, served)

    app = FastAPI(
        title="model-steps serve",
        description="Real-time predictions from published model versions.",
        lifespan=lifespan,
    )
    app.add_middleware(_CountRequests, counter=counter)
    for error, status in ERROR_STATUS.items():
        app.add_exception_handler(error, _answer(status))
    app.add_exception_handler(Exception, _internal)
    _routes(app, served, counter, max_body_bytes, max_rows)
    return app


def _routes(
    app: FastAPI, served: HandlerSet, counter: _RequestCounter, max_body_bytes: int, max_rows: int
) -> None:
    async def predict_named(name: str, request: Request) -> Response:
        handler = served[name]
        body = await _read_body(request, max_body_bytes)
        return await run_in_threadpool(_predict, handler, body, max_rows)

    def version_named(name: str) -> HandlerStatus:
        return served[name].status

    def models() -> list[HandlerStatus]:
        return [handler.status for handler in served.values()]

    def health() -> JSONResponse:
        answer = _health(served)
        status = 200 if answer.status == "ready" else 503
        return JSONResponse(answer.model_dump(mode="json"), status_code=status)

    def metrics() -> PlainTextResponse:
        text = served.metrics_text().rstrip("\n") + "\n" + counter.text()
        return PlainTextResponse(text, media_type=PROMETHEUS_TEXT)

    predict_options: dict[str, Any] = {
        "response_model": PredictResponse,
        "responses": PREDICT_ERRORS,
        "openapi_extra": {"requestBody": RECORDS_BODY},
    }
    app.post("/models/{name}/predict", **predict_options)(predict_named)
    app.get("/models/{name}/version", responses={404: PREDICT_ERRORS[404]})(version_named)
    app.get("/models")(models)
    health_responses: dict[int | str, dict[str, Any]] = {503: {"model": HealthResponse}}
    app.get("/health", response_model=HealthResponse, responses=health_responses)(health)
    app.get("/metrics", response_class=PlainTextResponse)(metrics)
    if len(served) == 1:
        (only,) = served

        async def predict(request: Request) -> Response:
            return await predict_named(only, request)

        def version() -> HandlerStatus:
            return version_named(only)

        app.post("/predict", **predict_options)(predict)
        app.get("/version")(version)


def _health(served: HandlerSet) -> HealthResponse:
    models = {}
    for name, handler in served.items():
        status = handler.status
        models[name] = ModelHealth(
            ready=status.ready, version=status.version, last_error=status.last_error
        )
    ready = all(model.ready for model in models.values())
    return HealthResponse(status="ready" if ready else "not ready", models=models)


def _stop(starter: threading.Thread, served: HandlerSet) -> None:
    """Stop polling once the start-up load is over, so no thread outlives the server."""
    starter.join()
    served.stop()


# -- one prediction --------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read with a cap: a declared length is only a hint, the stream is the truth."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(f"the request body ({int(declared)} bytes)", limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large("the request body", limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(what: str, limit: int) -> HTTPException:
    return HTTPException(
        413, f"{what} is over this server's limit of {limit} bytes: send fewer records per request"
    )


def _predict(handler: ModelHandler, body: bytes, max_rows: int) -> Response:
    """Parse, check and predict in a worker thread, so big bodies never block the event loop.

    The handler turns records its model refuses into InvalidInputError (422); anything else
    reaches the app's last-resort handler (500), so no input can take the server down. The
    answer is serialised here, once: the values are already JSON-ready, and validating a
    100,000-row list against :class:`PredictResponse` (which documents it) would only cost.
    """
    prediction = handler.predict(_records(body, max_rows))
    values = prediction.values()
    answer = {
        "model": prediction.model,
        "version": prediction.version,
        "rows": len(values),
        "predictions": values,
    }
    return Response(json.dumps(answer, allow_nan=False), media_type="application/json")


def _records(body: bytes, max_rows: int) -> list[dict[str, Any]]:
    """The records of a request body: a JSON array of objects, or one object."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
        raise InvalidInputError(
            f"the request body is not valid JSON ({error}); send an array of records"
        ) from error
    records = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise InvalidInputError(
            f"expected an array of records (objects, one key per column), got {_kind(data)}"
        )
    if not records:
        raise InvalidInputError("the array of records is empty: send at least one record")
    if len(records) > max_rows:
        raise HTTPException(
            413, f"{len(records)} records are over this server's limit of {max_rows} per request"
        )
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInputError(
                f"record {index} is {_kind(record)}; each record must be an object with one "
                "key per column"
            )
    return records


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON: send null for a missing value")


def _kind(value: Any) -> str:
    """A JSON value's type as the client wrote it."""
    if value is None:
        return "null"
    names = {bool: "a boolean", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), "an array" if isinstance(value, list) else "an object")


ERROR_STATUS: dict[type[Exception], int] = {
    InvalidInputError: 422,
    UnknownModelError: 404,
    NotReadyError: 503,
}
"""The package's errors a client causes or must wait out, and the status that says so."""


def _answer(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """An exception handler answering ``status`` with the error's own message."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None

    async def answer(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=status, headers=headers)

    return answer


async def _internal(request: Request, error: Exception) -> JSONResponse:
    """A failure nobody anticipated is still a JSON answer; the traceback goes to the log."""
    detail = f"the server failed to answer ({type(error).__name__}); its log has the details"
    return JSONResponse({"detail": detail}, status_code=500)


# -- request counts for /metrics -------------------------------------------------------------


class _RequestCounter:
    """Answers by route and status, so /metrics shows refused requests beside served ones."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int]] = Counter()

    def text(self) -> str:
        name = "model_steps_server_requests_total"
        lines = [
            f"# HELP {name} HTTP requests answered, by route and status.",
            f"# TYPE {name} counter",
        ]
        for (route, status), count in sorted(self.counts.items()):
            lines.append(f'{name}{{route="{route}",status="{status}"}} {count}')
        return "\n".join(lines) + "\n"


class _CountRequests:
    """A pure ASGI middleware: counting costs one dict update, not a response copy."""

    def __init__(self, app: ASGIApp, counter: _RequestCounter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.counter.counts[(route, status)] += 1


# -- running it ------------------------------------------------------------------------------


def run(
    handlers: HandlerSet | ModelHandler,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_rows: int = DEFAULT_MAX_ROWS,
    graceful_seconds: int = 30,
    access_log: bool = False,
) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and stop the handlers.

    uvicorn re-raises the stopping signal once it has shut down gracefully, which would end the
    process with "killed by SIGTERM"; a handler installed first turns that into a clean exit,
    so a supervisor sees status 0 for an orderly stop.
    """
    import uvicorn

    if "MALLOC_ARENA_MAX" not in os.environ:
        limit_malloc_arenas()
    app = create_app(handlers, max_body_bytes=max_body_bytes, max_rows=max_rows)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        timeout_graceful_shutdown=graceful_seconds,
        log_config=_log_config(uvicorn.config.LOGGING_CONFIG),
    )
    for stopping in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stopping, _exit_cleanly)
    uvicorn.Server(config).run()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _log_config(base: dict[str, Any]) -> dict[str, Any]:
    """The uvicorn logging set-up, plus this package's loggers (handler reloads and failures)."""
    config = json.loads(json.dumps(base))
    config["loggers"]["model_steps"] = {"handlers": ["default"], "level": "INFO"}
    return dict(config)
