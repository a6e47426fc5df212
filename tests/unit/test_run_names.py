"""Each run id gets its own scratch folder and records in a store, whatever characters it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_steps.store.manifest import InferenceRecord
from model_steps.store.model_store import ModelStore, open_store

COLLIDING = ("manual__a/b", "manual__a_b", "manual__a:b", "manual__a+b")
"""Run ids that read the same once unsafe characters are replaced."""


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return open_store(str(tmp_path / "iris"), owner="iris")


def record(run_id: str) -> InferenceRecord:
    return InferenceRecord(
        model="iris",
        version=1,
        manifest="versions/1/manifest.json",
        dag_id="iris__infer",
        run_id=run_id,
        output=f"out/{run_id}.csv",
        rows=3,
        recorded_at="2026-12-02T08:00:00+00:00",
    )


def test_run_ids_that_differ_only_in_unsafe_characters_get_their_own_scratch(
    store: ModelStore,
) -> None:
    folders = {store.scratch_url(f"iris__train__{run_id}") for run_id in COLLIDING}
    assert len(folders) == len(COLLIDING)
    assert all("/" not in url.rpartition("/runs/")[2] for url in folders)


def test_run_ids_that_differ_only_in_unsafe_characters_keep_their_own_records(
    store: ModelStore,
) -> None:
    for run_id in COLLIDING:
        store.record_inference(record(run_id))
    found = [store.inference(run_id) for run_id in COLLIDING]
    assert [each.output if each else None for each in found] == [
        f"out/{run_id}.csv" for run_id in COLLIDING
    ]


def test_a_run_id_that_is_already_safe_keeps_its_folder_name(store: ModelStore) -> None:
    assert store.scratch_url("iris__train__manual__2026-03-14T06.30").endswith(
        "/runs/iris__train__manual__2026-03-14T06.30"
    )


def test_a_run_id_cannot_take_the_name_another_run_id_was_given(store: ModelStore) -> None:
    hashed = store.scratch_url("manual__a/b").rpartition("/runs/")[2]
    assert store.scratch_url(hashed) != store.scratch_url("manual__a/b")
