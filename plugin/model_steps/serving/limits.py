"""What one client of ``model-steps serve`` may cost it: size, time, connections, concurrency.

Every cost a caller controls has a bound, so a hostile or broken client cannot slow the others
down or run the process out of file descriptors:

* a body over ``max_body_bytes`` (counted on the stream) or over ``max_rows`` records is a 413;
* a request's headers must arrive within ``header_timeout`` seconds of the connection opening
  (or of the previous response on a kept-alive one), else the connection is closed; uvicorn
  has no such limit of its own, so a half-sent request would hold its connection for ever;
* its body must arrive within ``body_timeout`` seconds of its headers, else a 408;
* an idle kept-alive connection is closed after ``keep_alive_timeout`` seconds;
* at most ``max_concurrency`` requests are handled at once (a JSON 503 with ``Retry-After``
  beyond), and at most ``max_connections`` connections are served (uvicorn answers 503 beyond).

Per-record costs (how many unknown columns get a "did you mean", how long an error message may
be, how deep a body may nest) are bounded where records are read
(:mod:`model_steps.serving.records`, :mod:`model_steps.serving.server`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ASGIApp", "ConcurrencyLimit", "ServerLimits", "timed_protocol"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class ServerLimits:
    """The bounds ``model-steps serve`` puts on each client (see the module docstring)."""

    max_body_bytes: int = 10 * 2**20
    max_rows: int = 100_000
    max_concurrency: int = 64
    max_connections: int = 256
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


class ConcurrencyLimit:
    """A pure ASGI middleware: at most ``limit`` requests at once; beyond, a JSON 503.

    A 503 with ``Retry-After`` tells a load balancer or client to try again (or elsewhere), at
    the cost of one small answer, instead of queueing work the server cannot keep up with.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle the request, or answer 503 when ``limit`` are already being handled."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.active >= self.limit:
            await _busy(send, self.limit)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


async def _busy(send: Send, limit: int) -> None:
    detail = f"this server is handling its limit of {limit} requests at once: retry shortly"
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def timed_protocol(base: type[asyncio.Protocol], header_timeout: float) -> type[asyncio.Protocol]:
    """Uvicorn's HTTP protocol ``base``, closing a connection whose request headers are late.

    The clock starts when the connection opens and again after each response; it stops when a
    new request's headers are complete (uvicorn then starts a request cycle). It works with
    uvicorn's httptools and h11 protocols alike, since it only watches ``cycle``.
    """

    class TimedProtocol(base):  # type: ignore[valid-type, misc]
        _header_timer: asyncio.TimerHandle | None = None
        _waiting_after: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle is None or self.cycle.response_complete:  # no pipelined request
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._waiting_after = self.cycle
                self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.cycle is self._waiting_after and not self.transport.is_closing():
                self.transport.close()  # no request began: idle or half-sent headers

    TimedProtocol.__name__ = TimedProtocol.__qualname__ = f"Timed{base.__name__}"
    return TimedProtocol
