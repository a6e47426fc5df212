"""The gate task: decide on a run's candidate, then stage it with the decision.

The candidate's test metrics were computed by its last step's task. For rules relative to the
live version, the live version is loaded and scored on this run's own test part with the same
metrics, so both sides of ``f1_macro >= live - 0.01`` come from the same rows. The decision is
made once per run: a retry finds the earlier try's record and repeats the outcome, never the
decision.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_steps.errors import CandidateRefusedError, StepError
from model_steps.runtime.candidate import GATE_TASK, Candidate, read_candidate, stage_candidate
from model_steps.runtime.context import Environment, RunInfo
from model_steps.runtime.infer import version_pipeline
from model_steps.runtime.rules import decide
from model_steps.runtime.scoring import score
from model_steps.runtime.scratch import Scratch
from model_steps.runtime.train import TEST_INPUT

if TYPE_CHECKING:
    from model_steps.definition.schema import ModelSpec

__all__ = ["gate"]

log = logging.getLogger(__name__)


def gate(spec: ModelSpec, run: RunInfo, env: Environment) -> dict[str, Any]:
    """Judge the candidate by the model's gate and stage it, refused or not.

    Raises:
        CandidateRefusedError: a rule failed; the candidate is kept with the reason and the
            run fails here, before publish (a retry repeats this outcome, not the decision).
    """
    scratch = Scratch(env, run)
    candidate = read_candidate(scratch, GATE_TASK, spec)
    if candidate is None:
        candidate = _decide_and_stage(spec, run, env, scratch)
    log.info("gate on %s version %d: %s", spec.name, candidate.version, candidate.reason)
    if candidate.outcome == "refused":
        raise CandidateRefusedError(f"version {candidate.version} {candidate.reason}")
    return candidate.as_dict()


def _decide_and_stage(
    spec: ModelSpec, run: RunInfo, env: Environment, scratch: Scratch
) -> Candidate:
    last = scratch.record(spec.steps[-1].id)
    candidate_metrics = last["record"]["metrics"].get("test", {})
    clock = time.perf_counter()
    live = _live_metrics(spec, env, scratch) if spec.gate.relative else _Live(None, {}, None)
    seconds = time.perf_counter() - clock
    record = decide(spec.gate, candidate_metrics, live.metrics, live.version, seconds)
    if live.error:
        record = record.model_copy(update={"live_error": live.error})
    return stage_candidate(spec, run, env, record)


@dataclass(frozen=True)
class _Live:
    version: int | None
    metrics: dict[str, float]
    error: str | None


def _live_metrics(spec: ModelSpec, env: Environment, scratch: Scratch) -> _Live:
    """The live version's test metrics on this run's test part; nothing when none is live.

    A live version that cannot read this data (its definition had other columns) cannot be
    compared fairly: its relative rules then do not apply, and the record says why.
    """
    pointer = env.store.pointer()
    if pointer is None:
        return _Live(None, {}, None)
    held_out = scratch.read_frame(spec.steps[0].id, TEST_INPUT)
    if held_out is None:
        return _Live(pointer.version, {}, "this run kept no test part to score it on")
    features, target = held_out
    manifest = env.store.manifest(pointer.version)
    names = spec.steps[-1].parameters.metrics
    try:
        pipeline = version_pipeline(manifest, env, spec)
        columns = manifest.steps[0].columns_in or list(features.columns)
        metrics = score(pipeline, features[columns], target, names, env.allow, split="test")
    except (KeyError, ValueError, StepError) as error:
        message = f"live version {pointer.version} could not score this run's test part: {error}"
        log.warning(message)
        return _Live(pointer.version, {}, message)
    return _Live(pointer.version, metrics, None)
