"""``from model_steps.handler import ModelHandler``: the serving entry point the design names.

The handlers live in :mod:`model_steps.serving`; this name is kept so serving code written
against the design (and earlier releases) keeps importing. It imports no Airflow.
"""

from __future__ import annotations

from model_steps.serving import HandlerSet, HandlerStatus, ModelHandler, Prediction

__all__ = ["HandlerSet", "HandlerStatus", "ModelHandler", "Prediction"]
