"""What a handler reports about itself: a status snapshot and its Prometheus text form."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["HandlerStatus", "metrics_text"]


@dataclass(frozen=True)
class HandlerStatus:
    """A snapshot of what a handler serves and how its polling and reloads went."""

    model: str
    ready: bool
    version: int | None
    pinned: int | None
    loaded_at: datetime | None
    last_poll_at: datetime | None
    last_poll_ok_at: datetime | None
    polls: int
    poll_failures: int
    reloads: int
    reload_failures: int
    last_error: str | None
    last_reload_seconds: float | None
    """Load, verify and warm-up time of the last version swapped in."""
    last_publish_to_serving_seconds: float | None
    """From the pointer's ``published_at`` to the swap (not measured for rollbacks)."""
    unavailable_seconds: float
    """Time spent between versions in unload-first mode, when predict answers NotReadyError."""
    versions_in_memory: int
    loaded_bytes: int
    """Asset bytes of the versions held (two while a new one loads beside the old)."""
    poll_requests: int = 0
    """Storage requests made by polls: one per poll, one more when the pointer changed."""
    poll_bytes: int = 0
    """Pointer bytes read by polls: none unless the pointer changed."""
    predict_requests: int = 0
    """Predict calls whose records were checked and predicted (or refused by the model)."""
    predict_batches: int = 0
    """Prediction runs: fewer than requests when batching combined concurrent ones."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: timestamps as ISO 8601 strings."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
        }


# -- Prometheus text format ------------------------------------------------------------------

PREFIX = "model_steps_handler_"
_METRICS: tuple[tuple[str, str, str, Callable[[HandlerStatus], float | None]], ...] = (
    ("ready", "gauge", "1 when a version is loaded and answering.", lambda s: s.ready),
    ("version", "gauge", "Version being served.", lambda s: s.version),
    ("pinned_version", "gauge", "Version pinned, whatever the pointer says.", lambda s: s.pinned),
    ("loaded_timestamp_seconds", "gauge", "When the served version was swapped in.",
     lambda s: _epoch(s.loaded_at)),
    ("last_poll_success_timestamp_seconds", "gauge", "When the store last answered a poll.",
     lambda s: _epoch(s.last_poll_ok_at)),
    ("polls_total", "counter", "Polls of the pointer.", lambda s: s.polls),
    ("poll_failures_total", "counter", "Polls that failed.", lambda s: s.poll_failures),
    ("poll_requests_total", "counter", "Storage requests made by polls.",
     lambda s: s.poll_requests),
    ("poll_bytes_total", "counter", "Pointer bytes read by polls.", lambda s: s.poll_bytes),
    ("reloads_total", "counter", "Versions swapped in.", lambda s: s.reloads),
    ("reload_failures_total", "counter", "Versions that failed to load.",
     lambda s: s.reload_failures),
    ("reload_seconds", "gauge", "Load, verify and warm-up time of the last version.",
     lambda s: s.last_reload_seconds),
    ("publish_to_serving_seconds", "gauge", "From publish to serving, for the last version.",
     lambda s: s.last_publish_to_serving_seconds),
    ("unavailable_seconds_total", "counter", "Time between versions in unload-first mode.",
     lambda s: s.unavailable_seconds),
    ("versions_in_memory", "gauge", "Versions held (two while one loads).",
     lambda s: s.versions_in_memory),
    ("loaded_bytes", "gauge", "Asset bytes of the versions held.", lambda s: s.loaded_bytes),
    ("predict_requests_total", "counter", "Predict calls that reached the model.",
     lambda s: s.predict_requests),
    ("predict_batches_total", "counter", "Prediction runs (batches of predict calls).",
     lambda s: s.predict_batches),
)  # fmt: skip


def metrics_text(statuses: Iterable[HandlerStatus]) -> str:
    """Prometheus text exposition of handlers' statuses; unknown values are left out."""
    statuses = list(statuses)
    lines = []
    for name, kind, help_text, value_of in _METRICS:
        lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
        for status in statuses:
            value = value_of(status)
            if value is not None:
                sample = f'{PREFIX}{name}{{model="{_label(status.model)}"}}'
                lines.append(f"{sample} {_number(float(value))}")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment else None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
