"""The Open Inference Protocol (KServe's "v2" REST API) in ``model-steps serve``.

KServe, Triton, MLServer and Seldon speak this protocol, and so do their clients, gateways and
load testers; these routes let them use a ``model-steps serve`` process unchanged, beside its
own ``/predict``:

* ``GET /v2`` (server metadata), ``GET /v2/health/live``, ``GET /v2/health/ready``;
* ``GET /v2/models/{name}[/versions/{v}]``: inputs (one per column, with its datatype and
  shape ``[-1, 1]``) and outputs of the version being served;
* ``GET /v2/models/{name}[/versions/{v}]/ready``;
* ``POST /v2/models/{name}[/versions/{v}]/infer``.

Readiness answers 200 for ready and 400 for not ready, as the protocol says. An inference goes
through the same handler as ``/predict``: the same body-size cap and deadline, row limit,
concurrency limit, batching, pinned version and hot reload, and the same checks of the records,
so its predictions equal ``/predict``'s. A version in the path must be the one served here (the
pointer's, or the pinned one); another is a 404. Errors are ``{"error": "..."}``: 400 for a
request the model cannot use, 404 for an unknown model or version, 413 and 408 for the size
and time limits, 503 (with ``Retry-After``) while no version is loaded.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from model_steps.errors import (
    InvalidInputError,
    ModelStepsError,
    NotReadyError,
    TooManyRecordsError,
    UnknownModelError,
)
from model_steps.serving.handler import HandlerSet, ModelHandler
from model_steps.serving.limits import RETRY_AFTER_SECONDS, ServerLimits
from model_steps.serving.records import Prediction
from model_steps.serving.v2_tensors import (
    InferRequest,
    encode_outputs,
    input_metadata,
    output_datatype,
    parse_request,
    tensors_frame,
)

__all__ = ["BodyReader", "register_v2"]

BodyReader = Callable[[Request, int, float], Awaitable[bytes]]
"""Reads a request's body with a size cap and a deadline (the server's own reader)."""
HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_ERROR_CHARS = 2_000
PLATFORM = "model-steps"
STATUS: dict[type[Exception], int] = {
    TooManyRecordsError: 413,
    InvalidInputError: 400,
    UnknownModelError: 404,
    NotReadyError: 503,
}


def register_v2(
    app: FastAPI, served: HandlerSet, limits: ServerLimits, read_body: BodyReader
) -> None:
    """Add the protocol's routes to ``app``, answering for the models ``served``."""
    outputs = _OutputsCache()

    def server_metadata() -> dict[str, Any]:
        return {"name": PLATFORM, "version": _version(), "extensions": ["binary_tensor_data"]}

    def live() -> dict[str, bool]:
        return {"live": True}

    def ready() -> JSONResponse:
        answer = all(handler.ready for handler in served.values())
        return JSONResponse({"ready": answer}, status_code=200 if answer else 400)

    def model_ready(name: str, version: str | None = None) -> JSONResponse:
        handler = served[name]
        answer = handler.ready and (version is None or version == str(handler.version))
        return JSONResponse({"name": name, "ready": answer}, status_code=200 if answer else 400)

    def model_metadata(name: str, version: str | None = None) -> dict[str, Any]:
        handler, number = _serving(served, name, version)
        schema = handler.schema
        if schema is None or schema.version != number:  # swapped meanwhile: ask again
            raise NotReadyError(f"{name} is switching versions: ask again")
        return {
            "name": name,
            "versions": [str(number)],
            "platform": PLATFORM,
            "inputs": input_metadata(schema),
            "outputs": outputs.of(handler, number),
        }

    async def infer(name: str, request: Request, version: str | None = None) -> Response:
        handler = served[name]
        body = await read_body(request, limits.max_body_bytes, limits.body_timeout)
        header = request.headers.get(HEADER_LENGTH)
        return await run_in_threadpool(_infer, handler, body, header, version, limits.max_rows)

    for path, route in (("/v2", server_metadata), ("/v2/health/live", live)):
        app.get(path, include_in_schema=True)(_guarded(route))
    app.get("/v2/health/ready")(_guarded(ready))
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.get(prefix)(_guarded(model_metadata))
        app.get(f"{prefix}/ready")(_guarded(model_ready))
        app.post(f"{prefix}/infer")(_guarded(infer))


def _guarded(route: Callable[..., Any]) -> Callable[..., Any]:
    """``route`` answering the protocol's ``{"error": ...}`` for every failure it raises."""
    if inspect.iscoroutinefunction(route):

        @functools.wraps(route)
        async def guarded_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await route(*args, **kwargs)
            except (ModelStepsError, HTTPException) as error:
                return _error(error)

        return guarded_async

    @functools.wraps(route)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return route(*args, **kwargs)
        except (ModelStepsError, HTTPException) as error:
            return _error(error)

    return guarded


def _error(error: Exception) -> JSONResponse:
    if isinstance(error, HTTPException):
        status, message, headers = error.status_code, str(error.detail), dict(error.headers or {})
    else:
        status = next((s for kind, s in STATUS.items() if isinstance(error, kind)), 400)
        message, headers = str(error), {}
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if len(message) > MAX_ERROR_CHARS:
        message = f"{message[:MAX_ERROR_CHARS]}... ({len(message) - MAX_ERROR_CHARS} more)"
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _serving(served: HandlerSet, name: str, version: str | None) -> tuple[ModelHandler, int]:
    """The model's handler and the version it serves, which ``version`` (if given) must be."""
    handler = served[name]
    return handler, _served_version(handler, version)


def _served_version(handler: ModelHandler, version: str | None) -> int:
    number = handler.version
    if number is None:
        raise NotReadyError(f"{handler.name} has no version loaded yet: try again soon")
    _check_version(handler.name, version, number)
    return number


def _check_version(name: str, version: str | None, served: int) -> None:
    if version is not None and version != str(served):
        raise UnknownModelError(
            f"version {version[:20]!r} of {name} is not served here: this server serves "
            f"version {served} (the live one, or the one it was started pinned to)"
        )


def _infer(
    handler: ModelHandler, body: bytes, header: str | None, version: str | None, max_rows: int
) -> Response:
    """Decode, predict with the handler (as ``/predict`` does) and encode, in a worker thread."""
    _served_version(handler, version)
    request = parse_request(body, header)
    schema = handler.schema
    if schema is None:
        raise NotReadyError(f"{handler.name} has no version loaded yet: try again soon")
    prediction = handler.predict(tensors_frame(request.inputs, schema, max_rows))
    _check_version(handler.name, version, prediction.version)  # a reload came in between
    return _answer(prediction, request)


def _answer(prediction: Prediction, request: InferRequest) -> Response:
    tensors, parts = encode_outputs(prediction.frame, request)
    answer: dict[str, Any] = {
        "model_name": prediction.model,
        "model_version": str(prediction.version),
        "outputs": tensors,
    }
    if request.id is not None:
        answer["id"] = request.id
    header = json.dumps(answer, allow_nan=False, separators=(",", ":")).encode()
    if not parts:
        return Response(header, media_type="application/json")
    return Response(
        b"".join([header, *parts]),
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(len(header))},
    )


class _OutputsCache:
    """Each model's outputs for the version it serves, found once by predicting one sample.

    Which columns a version answers (the label, one per class for probabilities, carried ones)
    shows in its predictions, so metadata predicts the manifest's first sample record once per
    version; a version without samples lists ``prediction`` alone.
    """

    def __init__(self) -> None:
        self.known: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    def of(self, handler: ModelHandler, version: int) -> list[dict[str, Any]]:
        found = self.known.get(handler.name)
        if found is not None and found[0] == version:
            return found[1]
        outputs = [{"name": "prediction", "datatype": "BYTES", "shape": [-1]}]
        samples = handler.store.manifest(version).sample_records
        if samples:
            try:
                frame = handler.predict(samples[:1]).frame
            except ModelStepsError:  # the sample no longer fits: keep the plain answer
                frame = None
            if frame is not None:
                outputs = [
                    {"name": str(c), "datatype": output_datatype(frame[c]), "shape": [-1]}
                    for c in frame.columns
                ]
        self.known[handler.name] = (version, outputs)
        return outputs


def _version() -> str:
    try:
        return metadata.version("airflow-model-steps")
    except metadata.PackageNotFoundError:
        return "unknown"
