"""Secrets Airflow knows never reach what a run persists: manifests, cards, step records.

With Airflow, a task's :class:`~model_steps.runtime.context.Environment` carries a mask that
replaces every value Airflow's secrets masker holds (connection passwords, sensitive variables)
with ``***``; this module applies it to documents. Values are masked wherever they appear, but
keys are left alone: a step's ``init`` recorded in a manifest must rebuild the same object, so
an argument named ``tokenizer`` keeps its value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

__all__ = ["Mask", "masked", "unmasked"]

Mask: TypeAlias = Callable[[str], str]
"""Text in, the same text with known secrets replaced."""


def unmasked(text: str) -> str:
    """No secrets are known (outside Airflow): the text as it is."""
    return text


def masked(value: Any, mask: Mask) -> Any:
    """A copy of a JSON-like document with ``mask`` applied to every string in it."""
    if mask is unmasked:
        return value
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {key: masked(item, mask) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item, mask) for item in value]
    return value
