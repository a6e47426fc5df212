"""``model-steps serve``: a small HTTP server around real-time handlers.

One process serves one model (``POST /predict``, ``GET /version``) or several (``POST
/models/{name}/predict``, ``GET /models/{name}/version``; these also work for a single model).
``GET /health`` answers 200 only once every model has a version loaded, so a load balancer sends
no traffic to a server that cannot answer yet; ``GET /metrics`` is Prometheus text.

Bad input is the client's problem, never the server's: every request is read with a size cap
and a deadline, parsed, checked and predicted inside a guard that turns any failure into a JSON
``{"detail": ...}`` answer of bounded length (422 for records the model cannot use, 413 for too
large a request, 408 for a body that does not arrive in time, 503 while no version is loaded or
while the server is at its concurrency limit, 404 for an unknown model). A client that hangs up
is counted as 499, never as a server error. :mod:`model_steps.serving.limits` has the bounds.
Airflow is not imported here: a serving fleet installs the package without it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from model_steps.errors import (
    InvalidInputError,
    NotReadyError,
    TooManyRecordsError,
    UnknownModelError,
)
from model_steps.serving.handler import HandlerSet, ModelHandler
from model_steps.serving.inference_protocol import register_v2
from model_steps.serving.limits import (
    RETRY_AFTER_SECONDS,
    Admission,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    ServerLimits,
    answer_busy,
    answer_bytes,
    answer_json,
    bounded_protocol,
    client_of,
)
from model_steps.serving.memory import limit_malloc_arenas
from model_steps.serving.records import Prediction
from model_steps.serving.status import HandlerStatus

__all__ = [
    "ErrorResponse",
    "HealthResponse",
    "ModelHealth",
    "PredictResponse",
    "create_app",
    "run",
]

log = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
MAX_DETAIL_CHARS = 2_000
"""Longest error message answered; the rest is cut (a caller controls what errors quote)."""
CLIENT_CLOSED = 499
"""Counted when a client hangs up before its answer (nginx's code); never sent."""
INLINE_BODY_BYTES = 16 * 2**10
"""Bodies up to this size (a few dozen records) are checked on the event loop and wait for
their batch there, holding no thread; larger ones are parsed and checked in a worker thread."""


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
    408: {"model": ErrorResponse, "description": "The body did not arrive in time."},
    413: {
        "model": ErrorResponse,
        "description": "The body or the number of records is over the server's limit.",
    },
    422: {
        "model": ErrorResponse,
        "description": "Malformed JSON, or records the model cannot "
        "use (missing or unknown columns, wrong types, no records).",
    },
    503: {
        "model": ErrorResponse,
        "description": "No version is loaded yet, or the server is at its concurrency limit; "
        "retry later.",
    },
}


# -- the app ---------------------------------------------------------------------------------


def create_app(handlers: HandlerSet | ModelHandler, limits: ServerLimits | None = None) -> FastAPI:
    """The HTTP app for ``handlers``; it starts them when it starts and stops them when it stops.

    The handlers start in a background thread, so the server listens (and answers 503) while
    the first version loads, instead of refusing connections.
    """
    limits = limits or ServerLimits()
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
    app.add_middleware(_Front, served=served, limits=limits, counter=counter)
    for error in (*ERROR_STATUS, HTTPException, ClientDisconnect, Exception):
        app.add_exception_handler(error, _handled)
    _routes(app, served, counter, limits)
    register_v2(app, served, limits, _read_body)  # the Open Inference Protocol, beside ours
    return app


def _routes(
    app: FastAPI, served: HandlerSet, counter: _RequestCounter, limits: ServerLimits
) -> None:
    async def predict_named(name: str, request: Request) -> Response:
        """Documents the route; :class:`_Front` answers it for the names served here."""
        answer = await _predicted(served[name], request.scope, request.receive, limits)
        return Response(answer, media_type="application/json")

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


async def _read_body(request: Request, limit: int, seconds: float) -> bytes:
    """:func:`_read_stream` of a FastAPI route's request."""
    return await _read_stream(request.scope, request.receive, limit, seconds)


async def _read_stream(scope: Scope, receive: Receive, limit: int, seconds: float) -> bytes:
    """The body, read with a cap and a deadline.

    A declared length is only a hint, the stream is the truth; the deadline covers the whole
    body, so a client trickling a byte a second cannot hold a connection for long.
    """
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            raise _too_large(f"the request body ({int(value)} bytes)", limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large("the request body", limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise HTTPException(
            408,
            f"the request body did not arrive within {seconds:g} s ({size} bytes came)",
            headers={"Connection": "close"},
        ) from None
    return b"".join(chunks)


def _too_large(what: str, limit: int) -> HTTPException:
    return HTTPException(
        413, f"{what} is over this server's limit of {limit} bytes: send fewer records per request"
    )


async def _predicted(
    handler: ModelHandler, scope: Scope, receive: Receive, limits: ServerLimits
) -> bytes:
    """The JSON answer to one prediction request; errors are raised, for the caller to answer.

    A small body is checked on the event loop and waits for its batch there; a large one is
    parsed, checked and predicted in a worker thread, so it never blocks the loop.
    """
    with handler.incoming() as arrival:  # a batch forming now may wait for this one
        body = await _read_stream(scope, receive, limits.max_body_bytes, limits.body_timeout)
        if len(body) > INLINE_BODY_BYTES:
            call = functools.partial(
                handler.predict_json, body, max_rows=limits.max_rows, arrival=arrival
            )
            prediction = await run_in_threadpool(call)
        else:
            prediction = await handler.predict_json_async(
                body, max_rows=limits.max_rows, arrival=arrival
            )
    return _encoded(prediction)


def _encoded(prediction: Prediction) -> bytes:
    """The answer, serialised once.

    The values are JSON-ready already, and validating a 100,000-row list against
    :class:`PredictResponse` (which documents it) would only cost.
    """
    values = prediction.values()
    answer = {
        "model": prediction.model,
        "version": prediction.version,
        "rows": len(values),
        "predictions": values,
    }
    return json.dumps(answer, allow_nan=False).encode()


ERROR_STATUS: dict[type[Exception], int] = {
    TooManyRecordsError: 413,
    InvalidInputError: 422,
    UnknownModelError: 404,
    NotReadyError: 503,
}
"""The package's errors a client causes or must wait out, and the status that says so."""


def _error_answer(error: Exception) -> tuple[int, str, dict[str, str]]:
    """The status, message and headers that answer ``error``, wherever it was raised.

    The package's errors say what the client should change or wait for, their message capped;
    a client that hung up is a 499 nobody reads; anything else is a 500 whose detail names no
    internals (the traceback goes to the log).
    """
    if isinstance(error, HTTPException):
        return error.status_code, _capped(str(error.detail)), dict(error.headers or {})
    if isinstance(error, ClientDisconnect):
        log.info("a client closed its connection before its request was read")
        return CLIENT_CLOSED, "", {}
    for kind, status in ERROR_STATUS.items():
        if isinstance(error, kind):
            return status, _capped(str(error)), {}
    detail = f"the server failed to answer ({type(error).__name__}); its log has the details"
    return 500, detail, {}


async def _handled(request: Request, error: Exception) -> Response:
    """FastAPI's answer to a route's error: the same as :class:`_Front`'s."""
    status, detail, headers = _error_answer(error)
    if status == CLIENT_CLOSED:
        return Response(status_code=CLIENT_CLOSED)
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _capped(detail: str) -> str:
    """At most MAX_DETAIL_CHARS of a message: its start says what was wrong."""
    if len(detail) <= MAX_DETAIL_CHARS:
        return detail
    return f"{detail[:MAX_DETAIL_CHARS]}... ({len(detail) - MAX_DETAIL_CHARS} more characters)"


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


class _Front:
    """The server's outermost layer: it admits and counts every request, and answers predictions.

    It is pure ASGI. A prediction is the request a server answers at volume, so its path is
    short: no routing, no ``Request`` object, no dependencies to solve, no response class, no
    middleware awaits; the body is read with the same cap and deadline, and errors get the same
    answers, as through FastAPI. Every other request (health, metrics, versions, the Open Inference
    Protocol, a name not served here) goes on to FastAPI, which also documents the predict
    routes in /openapi.json. Admission (:class:`Admission`) happens when the headers are in,
    before the body is read; counting costs one dict update.
    """

    def __init__(
        self, app: ASGIApp, served: HandlerSet, limits: ServerLimits, counter: _RequestCounter
    ) -> None:
        self.app = app
        self.limits = limits
        self.counter = counter
        self.admission = Admission(limits.max_concurrency, limits.max_client_concurrency)
        route = "/models/{name}/predict"
        self.predicting = {f"/models/{name}/predict": (h, route) for name, h in served.items()}
        if len(served) == 1:
            (handler,) = served.values()
            self.predicting["/predict"] = (handler, "/predict")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = self.predicting.get(scope["path"]) if scope["method"] == "POST" else None
        client = client_of(scope)
        refusal = self.admission.refusal(client)
        if refusal is not None:
            await answer_busy(send, refusal)
            self.counter.counts[(target[1] if target else "unmatched", 503)] += 1
            return
        self.admission.enter(client)
        try:
            if target is None:
                await self._onwards(scope, receive, send)
            else:
                status = await self._predict(target[0], scope, receive, send)
                self.counter.counts[(target[1], status)] += 1
        finally:
            self.admission.leave(client)

    async def _predict(
        self, handler: ModelHandler, scope: Scope, receive: Receive, send: Send
    ) -> int:
        """Answer one prediction request; the status it got."""
        try:
            answer = await _predicted(handler, scope, receive, self.limits)
        except Exception as error:
            status, detail, headers = _error_answer(error)
            if status == 500:
                log.error("a prediction failed unexpectedly", exc_info=error)
            if status != CLIENT_CLOSED:
                extra = tuple((k.lower().encode(), v.encode()) for k, v in headers.items())
                await answer_json(send, status, {"detail": detail}, extra)
            return status
        await answer_bytes(send, 200, answer)
        return 200

    async def _onwards(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI answers, and the answer is counted by its route."""
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
    limits: ServerLimits | None = None,
    graceful_seconds: int = 30,
    access_log: bool = False,
) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and stop the handlers.

    uvicorn re-raises the stopping signal once it has shut down gracefully, which would end the
    process with "killed by SIGTERM"; a handler installed first turns that into a clean exit,
    so a supervisor sees status 0 for an orderly stop.
    """
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    limits = limits or ServerLimits()
    if "MALLOC_ARENA_MAX" not in os.environ:
        limit_malloc_arenas()
    app = create_app(handlers, limits)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        timeout_graceful_shutdown=graceful_seconds,
        log_config=_log_config(uvicorn.config.LOGGING_CONFIG),
        http=bounded_protocol(
            AutoHTTPProtocol,
            limits.header_timeout,
            limits.max_client_connections,
            limits.max_header_bytes,
            limits.max_client_header_bytes,
        ),
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_timeout,  # type: ignore[arg-type]
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
