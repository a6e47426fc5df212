"""Publishing a run: its candidate version goes live, the pointer moving last.

Without a gate, publish stages the run's assets as the next version and moves the pointer at
once, as it always did. With one, the gate task staged the candidate and decided: publish moves
the pointer to an accepted candidate, and leaves a waiting one for a person to approve. Either
way the run ended well and its scratch goes: a staged candidate holds its own copy of the
assets, and approving it later (CLI or Models page) reads the version, never the run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from model_steps.errors import (
    AwaitingApprovalError,
    ModelStepsError,
    NotServableError,
    PermanentError,
)
from model_steps.runtime.candidate import (
    GATE_TASK,
    PUBLISH_TASK,
    Candidate,
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
    candidate = _candidate(spec, run, env, scratch)
    if candidate.outcome == "pending":
        scratch.clean()  # staged in the store: approving it reads the version, not the run
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
    env.store.go_live(candidate.version, manifest.published_at)
    live = env.store.pointer()
    pruned = _tidy(spec, env)
    scratch.clean()  # last: until here a retry finds the candidate and goes live again
    log.info(
        "published %s version %d (%s); the live version is %s; pruned %s",
        spec.name,
        candidate.version,
        manifest.published_at,
        live.version if live else "none",
        pruned or "nothing",
    )
    return {
        "version": candidate.version,
        "manifest": env.store.url("versions", str(candidate.version), "manifest.json"),
        "live": live is not None and live.version == candidate.version,
        "metrics": manifest.metrics,
        "pruned": pruned,
    }


def _candidate(spec: ModelSpec, run: RunInfo, env: Environment, scratch: Scratch) -> Candidate:
    """The candidate to make live: the gate's decision, or this task's own staging.

    A gated model's candidate only ever comes from its gate: publishing never stages one
    itself, so a gate that has not decided on the run's current steps stops the publish.
    """
    if spec.gate.rules or spec.gate.approval == "manual":
        decided = read_candidate(scratch, GATE_TASK, spec)
        if decided is None:
            raise PermanentError(
                f"the gate has not decided on the steps this run trained last: run the "
                f"{GATE_TASK!r} task of run {run.run_id} again"
            )
        return decided
    return read_candidate(scratch, PUBLISH_TASK, spec) or stage_candidate(spec, run, env, None)


def _tidy(spec: ModelSpec, env: Environment) -> list[int]:
    """Reclaim abandoned claims and apply retention; the version is live whatever happens here.

    A failure is logged, not raised: failing the task now would end a run that published (and
    send no Asset event), and the next publish or ``model-steps prune`` tidies up instead.
    """
    grace = claim_grace(spec)
    try:
        env.store.reclaim(grace)
        keep = spec.assets.keep_versions
        return env.store.prune(keep, spec.assets.pinned_versions, grace) if keep else []
    except ModelStepsError as error:
        log.warning("published %s, but could not tidy its store: %s", spec.name, error)
        return []


def claim_grace(spec: ModelSpec) -> float:
    """Seconds before a claim without a manifest counts as abandoned, for this model.

    Airflow stops a task at its ``execution_timeout``, even a try whose worker died, so a
    grace that long plus :data:`CLAIM_GRACE_SECONDS` outlives every try of the publish.
    """
    timeout = spec.airflow.task_defaults.execution_timeout
    return CLAIM_GRACE_SECONDS + (timeout.total_seconds() if timeout else 0.0)
