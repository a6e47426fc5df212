"""Feature engineering the corpus's callable steps name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def add_interactions(data: Any, pairs: Sequence[Sequence[str]]) -> Any:
    """Return ``data`` with one ``a_x_b`` product column added per pair of columns."""
    result = data.copy()
    for left, right in pairs:
        result[f"{left}_x_{right}"] = result[left] * result[right]
    return result
