"""Real-time serving: handlers that poll, verify, load beside and swap versions, and the server.

``from model_steps.serving import ModelHandler`` is the entry point for serving processes;
:mod:`model_steps.serving.server` wraps handlers in ``model-steps serve``'s HTTP server.

May import: :mod:`model_steps.runtime`, :mod:`model_steps.store`,
:mod:`model_steps.definition` and the top-level errors, settings and libraries. Never Airflow:
a serving process has no Airflow installed.
"""

from __future__ import annotations

from model_steps.serving.batching import Batching
from model_steps.serving.handler import HandlerSet, ModelHandler
from model_steps.serving.records import Prediction
from model_steps.serving.status import HandlerStatus

__all__ = ["Batching", "HandlerSet", "HandlerStatus", "ModelHandler", "Prediction"]
