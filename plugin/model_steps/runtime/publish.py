"""Publishing a run: its candidate version goes live, the pointer moving last.

Without a gate, publish stages the run's assets as the next version and moves the pointer at
once, as it always did. With one, the gate task staged the candidate and decided: publish moves
the pointer to an accepted candidate, and leaves a waiting one for a person to approve.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from model_steps.errors import AwaitingApprovalError, NotServableError
from model_steps.runtime.candidate import (
    GATE_TASK,
    PUBLISH_TASK,
    read_candidate,
    stage_candidate,
)
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.scratch import Scratch
from model_steps.store.model_store import CLAIM_GRACE_SECONDS

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec

__all__ = ["claim_grace", "publish"]

log = logging.getLogger(__name__)


def publish(spec: ModelSpec, run: RunInfo, env: Environment) -> dict[str, Any]:
    """Make the run's candidate the live version; abandoned claims and retention come after.

    Raises:
        AwaitingApprovalError: the gate left the candidate waiting for a person.
        NotServableError: the gate refused the candidate (its task failed before this one).
    """
    scratch = Scratch(env, run)
    candidate = (
        read_candidate(scratch, GATE_TASK)
        or read_candidate(scratch, PUBLISH_TASK)
        or stage_candidate(spec, run, env, None)
    )
    if candidate.outcome == "pending":
        raise AwaitingApprovalError(
            f"version {candidate.version} of {spec.name} waits for approval: "
            f"model-steps promote {spec.name} --version {candidate.version}, or approve it on "
            "the Models page"
        )
    if candidate.outcome != "accepted":
        raise NotServableError(
            f"version {candidate.version} was {candidate.outcome}: {candidate.reason}"
        )
    manifest = env.store.manifest(candidate.version)
    pointer = env.store.go_live(candidate.version, manifest.published_at)
    env.store.reclaim(claim_grace(spec))
    scratch.clean()
    keep = spec.assets.keep_versions
    pruned = env.store.prune(keep, spec.assets.pinned_versions) if keep else []
    log.info(
        "published %s version %d (%s); pruned %s",
        spec.name,
        pointer.version,
        pointer.manifest,
        pruned or "nothing",
    )
    return {
        "version": pointer.version,
        "manifest": pointer.manifest,
        "metrics": manifest.metrics,
        "pruned": pruned,
    }


def claim_grace(spec: ModelSpec) -> float:
    """Seconds before a claim without a manifest counts as abandoned, for this model.

    Airflow stops a task at its ``execution_timeout``, even a try whose worker died, so a
    grace that long plus :data:`CLAIM_GRACE_SECONDS` outlives every try of the publish.
    """
    timeout = spec.airflow.task_defaults.execution_timeout
    return CLAIM_GRACE_SECONDS + (timeout.total_seconds() if timeout else 0.0)
