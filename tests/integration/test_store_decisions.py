"""The store's part in publication decisions, on every backend: candidates that are complete but
not live, people's decisions written once, and evaluations kept beside their version."""

from __future__ import annotations

import uuid

import pytest

from model_steps.errors import NotServableError
from model_steps.store.manifest import (
    EvaluationRecord,
    GateRecord,
    Manifest,
    PerformanceMetric,
    ResourceUsage,
)
from model_steps.store.model_store import ModelStore, utc_now
from tests.integration.test_store import Backend, backend, card_for, manifest_for, publish, stage

__all__ = ["backend"]  # the backend fixture, shared with the store's contract tests


def candidate(store: ModelStore, outcome: str) -> int:
    """Stage a candidate the gate decided on; returns its version (the pointer stays put)."""
    run = f"manual__{uuid.uuid4().hex[:8]}"
    gate = GateRecord(outcome=outcome, reason=f"the gate said {outcome}", decided_at=utc_now())
    build = manifest_for(run)

    def with_gate(version: int, assets: dict) -> Manifest:  # type: ignore[type-arg]
        return build(version, assets).model_copy(update={"gate": gate})

    staged = [stage(store, run, "model", f"fitted by {run}".encode())]
    return store.stage(staged, with_gate, card_for).version


def evaluation(version: int, run_id: str, when: str, accuracy: float) -> EvaluationRecord:
    return EvaluationRecord(
        name=f"churn__evaluate/{run_id}",
        model="churn",
        version=version,
        run_id=run_id,
        start_date_time=when,
        end_date_time=when,
        performance=[PerformanceMetric(name="accuracy", value=accuracy)],
        input_path="memory://fresh.csv",
        row_count=10,
        resources=ResourceUsage(wall_seconds=0.1, cpu_seconds=0.1, peak_memory_bytes=1),
        degraded=accuracy < 0.5,
    )


class TestDecisions:
    def test_a_staged_candidate_is_complete_but_not_live(self, backend: Backend) -> None:
        store = backend.store()
        publish(store)
        version = candidate(store, "pending")
        assert store.versions() == [1, 2]
        assert store.pointer().version == 1
        assert store.status(version, 1) == "pending"
        assert store.card(version).startswith("# churn version 2")

    def test_approving_a_waiting_candidate_records_who_and_makes_it_live(
        self, backend: Backend
    ) -> None:
        store = backend.store()
        publish(store)
        version = candidate(store, "pending")
        store.approve(version, by="alice", reason="better recall")
        assert store.pointer().version == version
        decision = store.decision(version)
        assert (decision.action, decision.by, decision.reason) == (
            "approved",
            "alice",
            "better recall",
        )

    def test_a_decided_candidate_takes_no_second_decision(self, backend: Backend) -> None:
        store = backend.store()
        version = candidate(store, "pending")
        store.reject(version, by="bob", reason="drifted")
        with pytest.raises(NotServableError, match="rejected, not waiting for approval"):
            store.approve(version, by="alice")
        assert store.pointer() is None

    @pytest.mark.parametrize("outcome", ["refused", "pending"])
    def test_a_version_that_never_passed_cannot_be_rolled_back_to(
        self, backend: Backend, outcome: str
    ) -> None:
        store = backend.store()
        publish(store)
        version = candidate(store, outcome)
        publish(store)
        with pytest.raises(NotServableError, match=f"version {version} is {outcome}"):
            store.rollback(version)
        assert store.pointer().version == version + 1

    def test_a_refused_candidate_cannot_be_approved(self, backend: Backend) -> None:
        store = backend.store()
        version = candidate(store, "refused")
        with pytest.raises(NotServableError, match="the gate said refused"):
            store.approve(version, by="alice")

    def test_an_approved_version_can_be_rolled_back_to_later(self, backend: Backend) -> None:
        store = backend.store()
        version = candidate(store, "pending")
        store.approve(version, by="alice")
        publish(store)
        assert store.rollback(version).version == version

    def test_evaluations_are_kept_beside_their_version_oldest_first(self, backend: Backend) -> None:
        store = backend.store()
        publish(store)
        store.write_evaluation(evaluation(1, "scheduled__b", "2026-12-02T10:00:00+00:00", 0.4))
        store.write_evaluation(evaluation(1, "scheduled__a", "2026-12-01T10:00:00+00:00", 0.9))
        store.write_evaluation(evaluation(1, "scheduled__b", "2026-12-02T11:00:00+00:00", 0.3))
        found = store.evaluations(1)
        assert [(e.run_id, e.metric("accuracy")) for e in found] == [
            ("scheduled__a", 0.9),
            ("scheduled__b", 0.3),  # a retried run replaces its own record
        ]
        assert store.evaluations(2) == []
