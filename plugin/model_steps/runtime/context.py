"""What a task knows about its run: ids and parameters, its model's store, where data goes.

The operators in :mod:`model_steps.airflow.operators` translate Airflow's run context into a
:class:`RunInfo`; everything below them reads only these plain values, so the runtime can be
called (and tested) without Airflow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from model_steps.definition.data_locations import NOWHERE, DataPlaces, deployment_places
from model_steps.errors import PermanentError
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.secrets import Mask, unmasked
from model_steps.runtime.tables import write_table
from model_steps.settings import AllowList, Settings
from model_steps.store.model_store import ModelStore, open_store

if TYPE_CHECKING:
    import pandas as pd

    from model_steps.definition.schema import DataRef, ModelSpec, Step

__all__ = [
    "Environment",
    "RunInfo",
    "data_ref",
    "environment",
    "model_store",
    "step_folder",
    "step_index",
    "write_output",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """The facts about the current run that a task needs (ids, dates, resolved parameters)."""

    dag_id: str
    run_id: str
    logical_date: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    try_number: int = 1
    version: int | None = None
    """The model version an infer run was asked to use (its triggering Asset event's)."""
    run_after: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_type: str | None = None
    conf: Mapping[str, Any] = field(default_factory=dict)
    """The trigger config as given, before it was merged into ``params``: checked against the
    declared parameters (:func:`model_steps.runtime.run_config.check_run_config`)."""


@dataclass(frozen=True)
class Environment:
    """How a task reaches storage: the model's store, credentials and the import allow-list.

    ``mask`` hides the secrets Airflow knows in text before it is persisted (manifests, cards,
    step records); outside Airflow nothing is known and it returns the text as it is.
    """

    store: ModelStore
    storage_options: Mapping[str, Any]
    allow: AllowList
    mask: Mask = unmasked
    places: DataPlaces = NOWHERE
    """Where the model's data tables may be read and written; nowhere unless the deployment's
    settings say (:func:`environment`)."""


def environment(
    spec: ModelSpec,
    settings: Settings,
    storage_options: Mapping[str, Any],
    mask: Mask = unmasked,
) -> Environment:
    """The store of ``spec`` (its ``assets.root`` or the deployment's default root).

    The store belongs to the model: it refuses to publish, roll back or prune for another, and
    reads or deletes assets only in the model's folders (the store and its steps' own roots).
    """
    root = spec.assets.root or settings.assets_root
    steps = [step.assets_root for step in spec.steps]
    store = model_store(spec.name, root, spec.directory, steps, storage_options)
    places = deployment_places(spec, settings)
    return Environment(store, dict(storage_options), settings.allow_list, mask, places)


def model_store(
    name: str,
    root: str,
    directory: str,
    step_roots: Iterable[str | None],
    storage_options: Mapping[str, Any],
) -> ModelStore:
    """Model ``name``'s store at ``root/directory``, owning its folder under each step's root.

    The Models API opens it from the outline Airflow stores, without the spec.
    """
    own = [f"{step_root.rstrip('/')}/{directory}" for step_root in step_roots if step_root]
    return open_store(
        f"{root.rstrip('/')}/{directory}", storage_options, owner=name, asset_roots=own
    )


def step_folder(spec: ModelSpec, step: Step) -> str | None:
    """The model's folder under a step's own ``assets_root``; None for a step without one."""
    return f"{step.assets_root.rstrip('/')}/{spec.directory}" if step.assets_root else None


def data_ref(step: Step, direction: str, phase: str) -> DataRef:
    """The table a step reads (``input``) or writes (``output``) in ``phase``; it must exist."""
    io = getattr(step.parameters, direction)
    ref: DataRef | None = getattr(io, phase) if io is not None else None
    if ref is None:
        raise PermanentError(f"step {step.id!r} has no {direction}.{phase}")
    return ref


def step_index(spec: ModelSpec, step_id: str) -> int:
    """Where ``step_id`` sits in the model's order: a task knows its step only by id."""
    for index, step in enumerate(spec.steps):
        if step.id == step_id:
            return index
    raise PermanentError(f"model {spec.name!r} has no step {step_id!r}")


def write_output(
    step: Step, phase: str, frame: pd.DataFrame, rendered: Rendered, env: Environment
) -> int:
    """Write a step's output table for ``phase`` where the rendered URL says."""
    ref = data_ref(step, "output", phase)
    url = rendered.outputs[phase]
    size = write_table(
        frame,
        url,
        str(ref.inferred_format()),
        places=env.places,
        storage_options=env.storage_options,
        options=ref.options,
    )
    log.info("wrote %d rows (%d bytes) to %s", len(frame), size, url)
    return size
