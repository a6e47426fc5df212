"""The store's view of a model: live version, versions, metrics, card; never hangs a listing."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import wait
from dataclasses import dataclass

from fastapi import HTTPException, status

from model_steps.airflow.api.catalog import Definitions
from model_steps.airflow.connections import model_storage_options
from model_steps.airflow.outline import ModelOutline
from model_steps.errors import ModelStepsError, StoreUnavailableError
from model_steps.runtime.context import model_store
from model_steps.settings import Settings
from model_steps.store.model_store import CARD, ModelStore


def open_store(model: ModelOutline, settings: Settings) -> ModelStore:
    """The model's store, with its connection's credentials read now (they may have changed)."""
    conn_id = settings.connection(model.assets.conn_id)
    try:
        options = model_storage_options(conn_id)
    except Exception as error:  # the connection is missing or its backend is down
        raise StoreUnavailableError(f"cannot read connection {conn_id!r}: {error}") from error
    root = model.assets.root or settings.assets_root
    steps = [step.assets_root for step in model.steps]
    return model_store(model.name, root, model.assets.directory, steps, options)


STORE_TIMEOUT_SECONDS = 10.0
"""How long a listing waits for the stores; a slower one shows as unavailable, not as a hang."""


@dataclass(frozen=True)
class Live:
    """What the store says about a model right now."""

    version: int | None = None
    published_at: str | None = None
    versions: int = 0
    metrics: dict[str, dict[str, float]] | None = None
    error: str | None = None


def _live(store: ModelStore) -> Live:
    pointer = store.pointer()
    versions = store.versions()
    if pointer is None:
        return Live(versions=len(versions))
    manifest = store.manifest(pointer.version)
    return Live(pointer.version, pointer.published_at, len(versions), manifest.metrics)


def _live_or_error(model: ModelOutline, settings: Settings) -> Live:
    """Never raises: one model's broken store must not hide the others."""
    return live_and_card(model, settings, card=False)[0]


def live_and_card(model: ModelOutline, settings: Settings, card: bool) -> tuple[Live, str | None]:
    """The store's facts and (if asked) the live card, from one opened store; never raises."""
    try:
        store = open_store(model, settings)
        live = _live(store)
        return live, _card(store, live.version) if card else None
    except Exception as error:
        return Live(error=_describe(error)), None


def _describe(error: BaseException) -> str:
    known = (ModelStepsError, FileNotFoundError, PermissionError)
    return str(error) if isinstance(error, known) else f"{type(error).__name__}: {error}"


def live_all(models: Sequence[ModelOutline], definitions: Definitions) -> list[Live]:
    """Ask every store at once; a store that does not answer in time is shown as such."""
    if not models:
        return []
    settings = definitions.settings
    futures = [definitions.stores.submit(_live_or_error, model, settings) for model in models]
    done, _ = wait(futures, timeout=STORE_TIMEOUT_SECONDS)
    late = Live(error=f"the store did not answer within {STORE_TIMEOUT_SECONDS:g}s")
    return [future.result() if future in done else late for future in futures]


def _card(store: ModelStore, version: int | None) -> str | None:
    if version is None:
        return None
    try:
        return store.read_bytes(store.url("versions", str(version), CARD)).decode()
    except FileNotFoundError:
        return None


def require_complete(store: ModelStore, name: str, version: int) -> None:
    """A 404 naming the complete versions unless ``version`` is one."""
    complete = store.versions()
    if version not in complete:
        listing = ", ".join(map(str, complete)) or "none"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"model {name!r} has no complete version {version} (complete versions: {listing})",
        )
