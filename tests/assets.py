"""Reading a published asset back the way loaders do: through the store's verified file."""

from __future__ import annotations

from typing import Any


def asset_bytes(store: Any, record: Any) -> bytes:
    """The bytes of ``record``'s asset, refused unless they match the manifest."""
    with store.open_asset(record) as stream:
        data: bytes = stream.read()
    return data
