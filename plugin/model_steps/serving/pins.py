"""Which versions a pin may serve: published ones only, never one the gate or a person held back.

A pin picks a version whatever ``current.json`` says; that is how a handler rolls back without
moving the pointer for everyone. It must not become a way round publication: a version the
gate refused, one still waiting for a person's approval (staged, never published) or one a
person rejected was never fit to serve, and the pointer could never name it
(:meth:`ModelStore.rollback <model_steps.store.model_store.ModelStore.rollback>` refuses the
same versions). An older published version, or one a person approved, may be pinned.
"""

from __future__ import annotations

from model_steps.errors import NotServableError
from model_steps.store.manifest import Manifest, VersionStatus, version_status
from model_steps.store.model_store import ModelStore

__all__ = ["check_pinnable"]

SERVABLE: tuple[VersionStatus, ...] = ("live", "published")


def check_pinnable(store: ModelStore, manifest: Manifest) -> None:
    """Refuse to pin a version that was never published.

    Raises:
        NotServableError: naming the version's status, why it stands there, and the versions
            a pin may serve instead.
    """
    status = version_status(manifest, store.decision(manifest.version), None)
    if status in SERVABLE:
        return
    raise NotServableError(
        f"cannot pin version {manifest.version} of {manifest.model!r}: it is {status}, never "
        f"published ({_why(manifest, status)}); a pin serves only published versions"
        f"{_instead(store, manifest.model)}"
    )


def _why(manifest: Manifest, status: VersionStatus) -> str:
    gate = manifest.gate
    if status == "rejected":
        return "a person rejected it"
    reason = f"the gate's reason: {gate.reason}" if gate is not None else status
    if status == "pending":
        return f"it waits for a person's approval; {reason}"
    return f"the gate refused it; {reason}"


def _instead(store: ModelStore, model: str) -> str:
    """The versions that may be pinned, newest first, or what to do when there is none."""
    current = store.pointer()
    live = current.version if current else None
    servable = [v for v in reversed(store.versions()) if store.status(v, live) in SERVABLE]
    if not servable:
        return f": {model!r} has none yet"
    listed = ", ".join(f"{v} (live)" if v == live else str(v) for v in servable)
    return f": {listed}"
