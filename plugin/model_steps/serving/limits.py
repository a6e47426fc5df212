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
  beyond), and at most ``max_connections`` connections are served (uvicorn answers 503 beyond);
* one client (one address) gets a share of each: at most ``max_client_concurrency`` of its
  requests at once, admitted as their headers arrive, before any body is read, so a client
  trickling bodies holds its share of slots and no more; and at most
  ``max_client_connections`` open connections (beyond, a 503 and the connection closes).

A client is the connection's peer address, or the address a trusted proxy forwards (uvicorn's
``FORWARDED_ALLOW_IPS``) for the request share; a connection share counts a proxy's own
connections, so behind one it should be as large as ``max_connections``. What is not bounded:
clients spread over many addresses share the global limits between them.

Per-record costs (how many unknown columns get a "did you mean", how long an error message may
be, how deep a body may nest) are bounded where records are read
(:mod:`model_steps.serving.records`, :mod:`model_steps.serving.server`).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ASGIApp", "ConcurrencyLimit", "ServerLimits", "bounded_protocol"]

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
    max_client_concurrency: int = 16
    max_client_connections: int = 64
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


class ConcurrencyLimit:
    """A pure ASGI middleware: at most ``limit`` requests at once, ``per_client`` per client.

    Beyond either, a JSON 503 with ``Retry-After`` tells a load balancer or client to try again
    (or elsewhere), at the cost of one small answer, instead of queueing work the server cannot
    keep up with. It runs when a request's headers are in, before its body is read, so a
    client that sends bodies slowly holds at most its own share of the slots.
    """

    def __init__(self, app: ASGIApp, limit: int, per_client: int) -> None:
        self.app = app
        self.limit = limit
        self.per_client = per_client
        self.active = 0
        self.by_client: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle the request, or answer 503 when the server or its client is at the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = _client(scope)
        if self.by_client[client] >= self.per_client:
            await _busy(send, f"this client already has {self.per_client} requests in progress")
            return
        if self.active >= self.limit:
            await _busy(send, f"this server is handling its limit of {self.limit} requests at once")
            return
        self.active += 1
        self.by_client[client] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            self.by_client[client] -= 1
            if not self.by_client[client]:
                del self.by_client[client]


def _client(scope: Scope) -> str:
    """Who sent a request: its address (a trusted proxy's forwarded one, set by uvicorn)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


async def _busy(send: Send, why: str) -> None:
    body = json.dumps({"detail": f"{why}: retry shortly"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def bounded_protocol(
    base: type[asyncio.Protocol], header_timeout: float, per_client: int
) -> type[asyncio.Protocol]:
    """Uvicorn's HTTP protocol ``base``, bounding connections by time and by client.

    A connection whose request headers are late is closed. The clock starts when the connection
    opens and again after each response; it stops when a new request's headers are complete
    (uvicorn then starts a request cycle). It works with uvicorn's httptools and h11 protocols
    alike, since it only watches ``cycle``. A client (peer address) with ``per_client``
    connections open already gets a 503 on a new one, which then closes: the connection never
    reaches uvicorn, so it takes none of the ``max_connections`` the others share.
    """
    open_by_peer: Counter[str] = Counter()

    class BoundedProtocol(base):  # type: ignore[valid-type, misc]
        _header_timer: asyncio.TimerHandle | None = None
        _waiting_after: Any = None
        _peer: str | None = None

        def connection_made(self, transport: Any) -> None:
            peer = transport.get_extra_info("peername")
            host = str(peer[0]) if isinstance(peer, tuple) else ""
            if open_by_peer[host] >= per_client:
                transport.write(CLIENT_CONNECTIONS_BUSY)
                transport.close()
                return
            self._peer = host
            open_by_peer[host] += 1
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._peer is not None:  # a refused connection reads nothing
                super().data_received(data)

        def eof_received(self) -> bool | None:
            return super().eof_received() if self._peer is not None else None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle is None or self.cycle.response_complete:  # no pipelined request
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._peer is None:
                return
            open_by_peer[self._peer] -= 1
            if not open_by_peer[self._peer]:
                del open_by_peer[self._peer]
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

    BoundedProtocol.__name__ = BoundedProtocol.__qualname__ = f"Bounded{base.__name__}"
    return BoundedProtocol


def _raw_busy(why: str) -> bytes:
    """A whole 503 response, for a connection refused before any HTTP machinery runs."""
    body = json.dumps({"detail": f"{why}: retry shortly"}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nretry-after: {RETRY_AFTER_SECONDS}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


CLIENT_CONNECTIONS_BUSY = _raw_busy("this client has its share of this server's connections open")
