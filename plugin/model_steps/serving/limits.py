"""What one client of ``model-steps serve`` may cost it: size, time, connections, concurrency.

Every cost a caller controls has a bound, so a hostile or broken client cannot slow the others
down or run the process out of file descriptors:

* a body over ``max_body_bytes`` (counted on the stream) or over ``max_rows`` records is a 413;
* a request's headers must arrive within ``header_timeout`` seconds of the connection opening
  (or of the previous response on a kept-alive one), else the connection is closed; uvicorn
  has no such limit of its own, so a half-sent request would hold its connection for ever;
* a request's headers are at most ``max_header_bytes`` (a 431 and the connection closes), and
  the headers one client has in flight over all its connections at most
  ``max_client_header_bytes`` (also a 431): counted as they arrive, before uvicorn buffers
  them, so twenty 1 MiB headers cost the server nothing;
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

__all__ = [
    "ASGIApp",
    "Admission",
    "ServerLimits",
    "answer_busy",
    "answer_bytes",
    "answer_json",
    "bounded_protocol",
    "client_of",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_SECONDS = 1
_LINGER_SECONDS = 2.0
"""How long a refused connection's late bytes are read and dropped before it closes."""
_SLICE = 4096
"""Bytes handed to the HTTP parser at a time, so header bytes are counted as parsed (a request's
count may include up to two slices of the bodies around it)."""


@dataclass(frozen=True)
class ServerLimits:
    """The bounds ``model-steps serve`` puts on each client (see the module docstring)."""

    max_body_bytes: int = 10 * 2**20
    max_rows: int = 100_000
    max_concurrency: int = 64
    max_connections: int = 256
    max_client_concurrency: int = 16
    max_client_connections: int = 64
    max_header_bytes: int = 32 * 2**10
    max_client_header_bytes: int = 256 * 2**10
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")


class Admission:
    """At most ``limit`` requests at once, ``per_client`` per client; the rest are refused.

    Beyond either, a JSON 503 with ``Retry-After`` (:func:`answer_busy`) tells a load balancer
    or client to try again (or elsewhere), at the cost of one small answer, instead of queueing
    work the server cannot keep up with. The server's front admits a request when its headers
    are in, before its body is read, so a client that sends bodies slowly holds at most its own
    share of the slots. Two counters on the event loop's thread: no lock, no await.
    """

    def __init__(self, limit: int, per_client: int) -> None:
        self.limit = limit
        self.per_client = per_client
        self.active = 0
        self.by_client: Counter[str] = Counter()

    def refusal(self, client: str) -> str | None:
        """Why a request of ``client`` cannot be admitted now, or None when it can."""
        if self.by_client[client] >= self.per_client:
            return f"this client already has {self.per_client} requests in progress"
        if self.active >= self.limit:
            return f"this server is handling its limit of {self.limit} requests at once"
        return None

    def enter(self, client: str) -> None:
        """Count a request of ``client`` in, until :meth:`leave`."""
        self.active += 1
        self.by_client[client] += 1

    def leave(self, client: str) -> None:
        """Count a request of ``client`` out: its answer is sent, or it failed."""
        self.active -= 1
        self.by_client[client] -= 1
        if not self.by_client[client]:
            del self.by_client[client]


def client_of(scope: Scope) -> str:
    """Who sent a request: its address (a trusted proxy's forwarded one, set by uvicorn)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


async def answer_busy(send: Send, why: str) -> None:
    """The JSON 503 of a refused request."""
    await answer_json(send, 503, {"detail": f"{why}: retry shortly"})


RETRY_AFTER = ((b"retry-after", str(RETRY_AFTER_SECONDS).encode()),)


async def answer_json(
    send: Send, status: int, answer: Any, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """A whole JSON answer in two ASGI messages, with ``Retry-After`` on a 503."""
    await answer_bytes(send, status, json.dumps(answer, allow_nan=False).encode(), headers)


async def answer_bytes(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """An encoded JSON answer in two ASGI messages, with ``Retry-After`` on a 503."""
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(RETRY_AFTER if status == 503 else ()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


def bounded_protocol(
    base: type[asyncio.Protocol],
    header_timeout: float,
    per_client: int,
    max_header_bytes: int = ServerLimits.max_header_bytes,
    max_client_header_bytes: int = ServerLimits.max_client_header_bytes,
) -> type[asyncio.Protocol]:
    """Uvicorn's HTTP protocol ``base``, bounding connections by time and by client.

    A connection whose request headers are late is closed. The clock starts when the connection
    opens and again after each response; it stops when a new request's headers are complete
    (uvicorn then starts a request cycle). It works with uvicorn's httptools and h11 protocols
    alike, since it only watches ``cycle``. A client (peer address) with ``per_client``
    connections open already gets a 503 on a new one, which then closes: the connection never
    reaches uvicorn, so it takes none of the ``max_connections`` the others share.

    Header bytes are counted before uvicorn sees them, up to the blank line ending the headers:
    a request whose headers pass ``max_header_bytes``, or whose client's headers in flight on
    all its connections pass ``max_client_header_bytes``, gets a 431 and the connection closes.
    """
    open_by_peer: Counter[str] = Counter()
    heading_by_peer: Counter[str] = Counter()

    class BoundedProtocol(base):  # type: ignore[valid-type, misc]
        _header_timer: asyncio.TimerHandle | None = None
        _waiting_after: Any = None
        _peer: str | None = None
        _head_bytes = 0
        _reading_head = False
        _refused = False

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
            if self._peer is None or self._refused:  # a refused connection reads nothing
                return
            if not hasattr(base, "on_headers_complete"):  # h11 bounds its own buffer (400)
                super().data_received(data)
                return
            for start in range(0, len(data), _SLICE):
                piece = data[start : start + _SLICE]
                heading = self._reading_head
                super().data_received(piece)
                if (heading or self._reading_head) and not self._count_head(len(piece)):
                    return
                if self.transport.is_closing():
                    return

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._reading_head = True

        def on_headers_complete(self) -> None:
            self._reading_head = False
            super().on_headers_complete()

        def _count_head(self, size: int) -> bool:
            """Count header bytes; False when over a limit (then a 431 closes the connection)."""
            assert self._peer is not None
            self._head_bytes += size
            heading_by_peer[self._peer] += size
            if self._head_bytes > max_header_bytes:
                why = f"this request's headers are over {max_header_bytes} bytes"
            elif heading_by_peer[self._peer] > max_client_header_bytes:
                why = (
                    f"this client's headers in flight are over {max_client_header_bytes} bytes "
                    "on all its connections"
                )
            else:
                if not self._reading_head:  # the headers are complete: no longer in flight
                    self._release_head()
                return True
            self._release_head()
            self.transport.write(_raw_refusal(431, "Request Header Fields Too Large", why))
            self._linger()
            return False

        def _linger(self) -> None:
            """Send the answer and end the connection, reading (and dropping) what still comes.

            Closing at once with unread bytes would reset the connection, and a reset can lose
            the answer before the client reads it; dropped bytes cost nothing.
            """
            self._refused = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(_LINGER_SECONDS, self.transport.close)

        def _release_head(self) -> None:
            if self._head_bytes and self._peer is not None:
                heading_by_peer[self._peer] -= self._head_bytes
                if heading_by_peer[self._peer] <= 0:
                    del heading_by_peer[self._peer]
            self._head_bytes = 0

        def eof_received(self) -> bool | None:
            return super().eof_received() if self._peer is not None else None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.cycle is None or self.cycle.response_complete:  # no pipelined request
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._peer is None:
                return
            self._release_head()
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
    return _raw_refusal(503, "Service Unavailable", f"{why}: retry shortly")


def _raw_refusal(status: int, reason: str, detail: str) -> bytes:
    """A whole response that closes the connection, written before uvicorn parses anything."""
    body = json.dumps({"detail": detail}).encode()
    retry = f"retry-after: {RETRY_AFTER_SECONDS}\r\n" if status == 503 else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{retry}connection: close\r\n\r\n"
    )
    return head.encode() + body


CLIENT_CONNECTIONS_BUSY = _raw_busy("this client has its share of this server's connections open")
