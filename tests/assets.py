"""Published assets as loaders read them, and the hostile ones an attacker would plant."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any


def asset_bytes(store: Any, record: Any) -> bytes:
    """The bytes of ``record``'s asset, refused unless they match the manifest."""
    with store.open_asset(record) as stream:
        data: bytes = stream.read()
    return data


class _Touch:
    """A pickle that creates a file when it is loaded: proof that loading ran its code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def touching_pickle(marker: Path) -> bytes:
    """A pickle (joblib reads it too) whose loading creates ``marker``."""
    return pickle.dumps(_Touch(marker))
