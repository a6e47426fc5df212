"""Airflow's secrets masker, applied by value to what the plugin persists and serves.

Tasks mask manifests, cards and step records with :func:`mask_known_secrets`; the Models API
masks every JSON answer with :class:`MaskedAnswers`.

Airflow registers secrets as it reads them (a connection's password and extra, sensitive
variables); a task process keeps them in the Task SDK's masker, the API server in core's.
Both are asked, and only by value: a manifest's keys stay as written, so a step argument named
``tokenizer`` still rebuilds the same object.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_steps.runtime.secrets import masked

__all__ = ["MaskedAnswers", "mask_known_secrets"]


def mask_known_secrets(text: str) -> str:
    """``text`` with every value either of Airflow's secrets maskers knows replaced by ``***``."""
    from airflow._shared.secrets_masker import redact as core_redact
    from airflow.sdk._shared.secrets_masker import redact as task_redact

    once = task_redact(text)
    twice = core_redact(once if isinstance(once, str) else text)
    return twice if isinstance(twice, str) else text


class MaskedAnswers:
    """ASGI middleware: every JSON answer of the Models API, masked by value before it leaves.

    Applied to the whole app, so listings, cards, manifests and error bodies are covered
    alike, including stores written before masking existed. Other answers (the page's files)
    pass through untouched.
    """

    def __init__(self, app: ASGIApp, mask: Callable[[str], str] = mask_known_secrets) -> None:
        self.app = app
        self.mask = mask

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold a JSON answer until its body is complete, then send it masked."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and _is_json(message):
                held = message  # sent with the masked body, whose length may differ
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_masked(held, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, buffered)

    async def _send_masked(self, start: Message, body: bytes, send: Send) -> None:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        hidden = masked(document, self.mask)
        if hidden != document:
            body = json.dumps(hidden, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _is_json(start: Message) -> bool:
    types = [v for k, v in start.get("headers", []) if k.lower() == b"content-type"]
    return bool(types) and types[0].split(b";")[0].strip().lower() == b"application/json"
