"""Real-time handlers on a local store: what they serve, what they refuse, how they follow.

Versions are trained and published for real, with the same task functions the train DAG runs,
on iris (see :mod:`tests.lab`, shared with ``tests/integration/test_handler_faults.py``, which
runs the fault scenarios against local disk and the S3 test server).
"""

from __future__ import annotations

import json
import math
import random
import sys
import textwrap
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from model_steps.errors import (
    CorruptDocumentError,
    DefinitionError,
    InvalidInputError,
    NotDeployedError,
    NotReadyError,
    PermanentError,
    StepError,
    UnknownModelError,
)
from model_steps.serving.handler import HandlerSet, ModelHandler, poll_wait
from tests.lab import (
    FEATURES,
    PAUSE_CODE,
    Lab,
    expected_labels,
    make_lab,
    pause_step,
    scores,
    wait_for,
    write_iris,
)


def rewrite_manifest(lab: Lab, version: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit a published manifest behind the store's back (an older release, vanished code)."""
    store = lab.store
    path = store.path("versions", str(version), "manifest.json")
    document = json.loads(store.fs.cat_file(path))
    change(document)
    store.fs.pipe_file(path, json.dumps(document).encode())


def as_an_older_release_wrote_it(document: dict[str, Any]) -> None:
    for step in document["steps"]:
        del step["definition"], step["dtypes_in"]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_iris(tmp_path_factory.mktemp("data"))


@pytest.fixture
def lab(tmp_path: Path, data: Path) -> Lab:
    return make_lab(tmp_path, data)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[ModelHandler]:
    """One published version and a handler serving it, shared by the read-only tests."""
    folder = tmp_path_factory.mktemp("served")
    lab = make_lab(folder, data)
    lab.train()
    handler = lab.handler()
    handler.load()
    yield handler


# -- predict -----------------------------------------------------------------------------------


def test_predicts_what_the_plain_scikit_learn_pipeline_predicts(
    served: ModelHandler, data: Path
) -> None:
    rows = scores(data)
    prediction = served.predict(rows)
    assert (prediction.model, prediction.version) == ("iris", 1)
    assert prediction.values() == expected_labels(data, rows)


def test_a_list_of_records_and_one_record_predict_like_the_frame(
    served: ModelHandler, data: Path
) -> None:
    rows = scores(data)
    records = rows.to_dict(orient="records")
    expected = served.predict(rows).values()
    assert served.predict(records).values() == expected
    assert served.predict(records[4]).values() == expected[4:5]


def test_records_may_keep_the_target_column_and_any_column_order(
    served: ModelHandler, data: Path
) -> None:
    frame = pd.read_csv(data).head(5)
    shuffled = frame[["species", *reversed(FEATURES)]]
    assert served.predict(shuffled).values() == served.predict(frame[FEATURES]).values()


@pytest.mark.parametrize(
    ("value", "shown"),
    [("5.1", "'5.1' (text)"), (True, "true (a boolean)")],
    ids=["text", "boolean"],
)
def test_a_number_column_refuses_text_and_booleans_by_default(
    served: ModelHandler, value: Any, shown: str
) -> None:
    record = {**dict.fromkeys(FEATURES, 1.0), "sepal_length": value}
    with pytest.raises(InvalidInputError) as refused:
        served.predict(record)
    assert f"column 'sepal_length' takes numbers; record 0 has {shown}" in str(refused.value)


def test_lenient_values_convert_numbers_sent_as_text(lab: Lab, data: Path) -> None:
    lab.train()
    handler = lab.handler(strict_values=False)
    handler.load()
    record = scores(data).iloc[0].to_dict()
    as_text = {column: str(value) for column, value in record.items()}
    assert handler.predict(as_text).values() == handler.predict(record).values()


def test_probabilities_come_back_with_the_label_as_one_json_ready_dict_per_row(
    tmp_path: Path, data: Path
) -> None:
    lab = make_lab(tmp_path, data, predict="predict_proba")
    lab.train()
    handler = lab.handler()
    handler.load()
    values = handler.predict(scores(data).head(3)).values()
    assert json.loads(json.dumps(values)) == values
    assert [list(row) for row in values] == [
        ["prediction", "setosa", "versicolor", "virginica"]
    ] * 3
    for row in values:
        probabilities = {label: p for label, p in row.items() if label != "prediction"}
        assert math.isclose(sum(probabilities.values()), 1.0)
        assert row["prediction"] == max(probabilities, key=probabilities.__getitem__)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([], "no records to predict"),
        (pd.DataFrame(columns=FEATURES), "no records to predict"),
        ("sepal_length=5", "records must be a list of mappings"),
        ([[5.1, 3.5, 1.4, 0.2]], "record 0 is list, not a mapping"),
        (
            [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4}],
            "missing column(s) 'petal_width'",
        ),
        (
            [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_widht": 0.2}],
            "unknown column 'petal_widht' (did you mean 'petal_width'",
        ),
        (
            [{"sepal_length": "tall", "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 2}],
            "column 'sepal_length' takes numbers; record 0 has 'tall'",
        ),
        (
            [{"sepal_length": None, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 2}],
            "cannot predict these records: Input X contains NaN",
        ),
    ],
    ids=[
        "empty-list",
        "empty-frame",
        "text",
        "not-a-mapping",
        "missing-column",
        "misspelt-column",
        "not-a-number",
        "missing-value",
    ],
)
def test_bad_records_are_refused_with_what_is_wrong(
    served: ModelHandler, records: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        served.predict(records)
    assert message in str(refused.value)


def test_column_errors_name_the_columns_the_version_reads(served: ModelHandler) -> None:
    with pytest.raises(InvalidInputError, match="version 1 of iris reads sepal_length, sepal"):
        served.predict({"colour": "blue"})


# -- what is served ----------------------------------------------------------------------------


def test_an_undeployed_model_is_refused_with_what_to_change(tmp_path: Path, data: Path) -> None:
    lab = make_lab(tmp_path, data, status="undeployed")
    with pytest.raises(NotDeployedError) as refused:
        lab.handler()
    assert "status 'undeployed'" in str(refused.value)
    assert "set 'status: deployed'" in str(refused.value)
    assert "pin a version" in str(refused.value)


def test_an_undeployed_model_serves_a_pinned_version(tmp_path: Path, data: Path) -> None:
    lab = make_lab(tmp_path, data, status="undeployed")
    lab.train()
    lab.train(C=0.01)
    handler = lab.handler(pin=1)
    assert handler.load() == 1
    assert not handler.poll_once()
    assert handler.predict(scores(data)).version == 1
    with pytest.raises(NotDeployedError):
        handler.pin(None)


def test_a_store_url_alone_serves_its_published_model(lab: Lab, data: Path) -> None:
    lab.train()
    handler = ModelHandler.from_store(lab.store.url())
    assert handler.load() == 1
    assert handler.name == "iris"
    rows = scores(data)
    assert handler.predict(rows).values() == expected_labels(data, rows)


def slip_in_a_version_of(lab: Lab, other: Lab) -> None:
    """Copy ``other``'s version 1 into ``lab``'s store as the live version 2.

    What a store written before ownership was recorded could hold: another model's version,
    published there by a definition that shared the folder.
    """
    source, target = other.store, lab.store
    manifest = json.loads(source.fs.cat_file(source.path("versions", "1", "manifest.json")))
    manifest["version"] = 2
    target.fs.pipe_file(
        target.path("versions", "2", "manifest.json"), json.dumps(manifest).encode()
    )
    pointer = {
        "version": 2,
        "manifest": target.url("versions", "2", "manifest.json"),
        "published_at": manifest["published_at"],
    }
    target.fs.pipe_file(target.path("current.json"), json.dumps(pointer).encode())


@pytest.mark.parametrize("opened", ["from_definition", "from_store"])
def test_a_handler_never_serves_a_version_another_model_published(
    tmp_path: Path, data: Path, opened: str
) -> None:
    iris = make_lab(tmp_path / "iris", data)
    iris.train()
    intruder = make_lab(tmp_path / "intruder", data, name="intruder")
    intruder.train(C=0.01)
    handler = (
        iris.handler()
        if opened == "from_definition"
        else (ModelHandler.from_store(iris.store.url(), poll_interval=0.05, max_backoff=0.4))
    )
    assert handler.load() == 1
    slip_in_a_version_of(iris, intruder)
    assert handler.poll_once() is False
    assert handler.version == 1
    assert "'intruder'" in str(handler.status.last_error)
    assert handler.predict(scores(data)).version == 1


def test_a_model_with_an_airflow_connection_needs_storage_options(
    tmp_path: Path, data: Path
) -> None:
    lab = make_lab(tmp_path, data, name="conn", conn_id="model_steps_models")
    with pytest.raises(
        PermanentError, match=r"Airflow connection 'model_steps_models'.*storage_options"
    ):
        ModelHandler.from_definition(lab.definition)


def test_an_invalid_definition_reports_its_problems(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apiVersion: model-steps/v1\nkind: Model\nname: broken\nstepz: []\n")
    with pytest.raises(DefinitionError, match="unknown field 'stepz'"):
        ModelHandler.from_definition(path)


def test_nothing_published_yet_is_not_ready_until_training_publishes(lab: Lab) -> None:
    handler = lab.handler()
    with pytest.raises(NotReadyError, match="nothing is published for iris"):
        handler.load()
    with pytest.raises(NotReadyError, match=r"no version loaded yet: .*nothing is published"):
        handler.predict({"sepal_length": 1})
    assert not handler.poll_once()
    assert handler.status.poll_failures == 0, "an untrained model is not a failing store"
    lab.train()
    assert handler.poll_once()
    assert handler.ready and handler.version == 1


def test_a_version_from_an_older_release_is_served_with_its_definition(
    lab: Lab, data: Path
) -> None:
    lab.train()
    rewrite_manifest(lab, 1, as_an_older_release_wrote_it)
    handler = lab.handler()
    assert handler.load() == 1
    rows = scores(data)
    assert handler.predict(rows).values() == expected_labels(data, rows)
    with pytest.raises(PermanentError, match="does not record its steps"):
        ModelHandler.from_store(lab.store.url()).load()


def test_an_older_version_whose_init_needs_airflow_to_render_is_refused(
    tmp_path: Path, data: Path
) -> None:
    lab = make_lab(tmp_path, data, step=pause_step("slow_c"))
    lab.train()
    rewrite_manifest(lab, 1, as_an_older_release_wrote_it)
    templated = lab.definition.read_text().replace(
        "init: {seconds: 0.0}", 'init: {seconds: "{{ params.pause }}"}'
    )
    lab.definition.write_text(templated + "parameters:\n  pause: {default: 0.0}\n")
    with pytest.raises(StepError, match="step 'pause' has Airflow templates in its init"):
        lab.handler().load()


def test_a_version_whose_step_code_is_missing_here_is_refused_at_warm_up(
    tmp_path: Path, data: Path
) -> None:
    lab = make_lab(tmp_path, data, step=pause_step("slow_d"))
    lab.train()
    vanishing = lab.definition.parent / "vanished_code.py"
    vanishing.write_text(PAUSE_CODE)
    handler = lab.handler()  # the allow-list names the folder's modules, as Airflow's does
    handler.load()
    lab.train()
    vanishing.unlink()

    def renamed(document: dict[str, Any]) -> None:
        document["steps"][1]["definition"]["parameters"]["callable"] = "vanished_code:pause"

    rewrite_manifest(lab, 2, renamed)
    assert not handler.poll_once()
    status = handler.status
    assert (status.version, status.reload_failures) == (1, 1)
    assert status.last_error and "cannot import 'vanished_code'" in status.last_error


# -- following the pointer ---------------------------------------------------------------------


def test_a_replaced_version_is_freed_from_memory_at_the_swap(lab: Lab) -> None:
    """Two versions at most: nothing keeps the old pipeline alive once the new one serves."""
    lab.train()
    handler = lab.handler()
    handler.load()
    served = weakref.ref(handler._loaded)  # the one object predict reads; no public handle
    lab.train(C=0.01)
    assert handler.poll_once()
    assert served() is None


def test_a_new_version_is_swapped_in_and_reported(lab: Lab, data: Path) -> None:
    reloads: list[tuple[int | None, int]] = []
    lab.train()
    handler = lab.handler(on_reload=lambda old, new: reloads.append((old, new)))
    handler.load()
    lab.train(C=0.01)
    assert handler.poll_once()
    rows = scores(data)
    assert handler.predict(rows).values() == expected_labels(data, rows, C=0.01)
    status = handler.status
    assert (status.version, status.reloads, status.versions_in_memory) == (2, 2, 1)
    assert status.last_publish_to_serving_seconds is not None
    assert 0 < status.last_publish_to_serving_seconds < 60
    assert status.last_reload_seconds is not None and status.last_reload_seconds > 0
    assert status.loaded_bytes == sum(s.asset.size for s in lab.store.manifest(2).steps if s.asset)
    assert reloads == [(None, 1), (1, 2)]


def test_an_unchanged_pointer_costs_one_request_and_no_bytes(lab: Lab) -> None:
    lab.train()
    handler = lab.handler()
    handler.load()
    before = handler.status
    for _ in range(5):
        assert not handler.poll_once()
    after = handler.status
    assert after.poll_requests - before.poll_requests == 5
    assert after.poll_bytes == before.poll_bytes
    assert (after.polls, after.poll_failures, after.reloads) == (5, 0, 1)
    assert after.last_poll_ok_at is not None


def test_pinning_serves_a_version_whatever_the_pointer_says(lab: Lab) -> None:
    lab.train()
    lab.train(C=0.01)
    handler = lab.handler()
    handler.load()
    handler.pin(1)
    assert (handler.version, handler.status.pinned) == (1, 1)
    assert not handler.poll_once()
    assert handler.version == 1
    handler.pin(None)
    assert (handler.version, handler.status.pinned) == (2, None)


def test_pinning_a_version_that_does_not_exist_keeps_the_served_one(lab: Lab) -> None:
    lab.train()
    handler = lab.handler()
    handler.load()
    with pytest.raises(CorruptDocumentError, match="version 7 has no manifest"):
        handler.pin(7)
    assert handler.version == 1 and handler.ready


def test_the_poll_thread_picks_up_new_versions_by_itself(lab: Lab) -> None:
    lab.train()
    with lab.handler() as handler:
        assert handler.version == 1
        lab.train(C=0.01)
        wait_for(lambda: handler.version == 2)
    assert handler.status.polls >= 1


def test_loading_beside_the_old_version_keeps_answering_during_the_reload(
    tmp_path: Path, data: Path
) -> None:
    lab = make_lab(tmp_path, data, step=pause_step("slow_a"))
    lab.train(pause={"seconds": 0.0})
    handler = lab.handler()
    handler.load()
    lab.train(pause={"seconds": 0.5})  # the warm-up of version 2 takes half a second
    polling = threading.Thread(target=handler.poll_once)
    polling.start()
    wait_for(lambda: handler.status.versions_in_memory == 2)
    assert handler.predict(scores(data)).version == 1
    polling.join()
    assert handler.version == 2
    assert handler.status.versions_in_memory == 1
    assert handler.status.unavailable_seconds == 0


def test_unload_first_mode_reports_the_gap_it_causes(tmp_path: Path, data: Path) -> None:
    lab = make_lab(tmp_path, data, step=pause_step("slow_b"))
    lab.train(pause={"seconds": 0.0})
    handler = lab.handler(unload_first=True)
    handler.load()
    lab.train(pause={"seconds": 0.5})
    polling = threading.Thread(target=handler.poll_once)
    polling.start()
    wait_for(lambda: not handler.ready)
    with pytest.raises(NotReadyError, match="switching from version 1 to 2"):
        handler.predict(scores(data))
    assert handler.status.versions_in_memory == 1
    polling.join()
    assert handler.version == 2
    assert handler.status.unavailable_seconds >= 0.5
    assert "model_steps_handler_unavailable_seconds_total" in handler.metrics_text()


def test_concurrent_requests_see_one_whole_version_each(lab: Lab, data: Path) -> None:
    """Predictions during reloads always match exactly one version's own predictions.

    Every version differs in both steps, so a request mixing two versions' steps would
    match neither.
    """
    rows = scores(data)
    lab.train(C=1.0)
    handler = lab.handler()
    handler.load()
    per_version = {1: expected_labels(data, rows, C=1.0)}
    answers: list[tuple[int, list[Any]]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            prediction = handler.predict(rows)
            answers.append((prediction.version, prediction.values()))

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    for version, C, with_std in ((2, 0.01, False), (3, 1.0, True), (4, 0.01, False)):
        assert lab.train(C=C, with_std=with_std) == version
        per_version[version] = expected_labels(data, rows, C=C, with_std=with_std)
        assert handler.poll_once()
    wait_for(lambda: any(version == 4 for version, _ in answers))
    stop.set()
    for thread in clients:
        thread.join()
    assert per_version[1] != per_version[2]
    assert all(values == per_version[version] for version, values in answers)


# -- hooks, status and metrics -----------------------------------------------------------------


def test_a_failing_hook_never_stops_serving(lab: Lab) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("the alerting system is down")

    lab.train()
    handler = lab.handler(on_reload=broken, on_error=broken)
    assert handler.load() == 1
    lab.train(C=0.01)
    assert handler.poll_once()
    assert handler.version == 2


def test_status_is_json_ready(served: ModelHandler) -> None:
    status = served.status.as_dict()
    assert json.loads(json.dumps(status)) == status
    assert status["model"] == "iris" and status["ready"] is True
    assert isinstance(status["loaded_at"], str)


def test_metrics_are_prometheus_text_labelled_with_the_model(served: ModelHandler) -> None:
    text = served.metrics_text()
    samples = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert all(name.startswith("model_steps_handler_") for name in samples)
    assert all(name.endswith('{model="iris"}') for name in samples)
    assert samples['model_steps_handler_version{model="iris"}'] == 1
    assert samples['model_steps_handler_ready{model="iris"}'] == 1
    assert 'model_steps_handler_poll_requests_total{model="iris"}' in samples
    assert 'model_steps_handler_poll_bytes_total{model="iris"}' in samples
    assert "# TYPE model_steps_handler_reloads_total counter" in text


def test_waits_double_per_failure_up_to_the_cap_and_spread_by_the_jitter() -> None:
    assert [poll_wait(1.0, 10.0, failures) for failures in range(6)] == [1, 2, 4, 8, 10, 10]
    assert poll_wait(1.0, 300.0, 10_000) == 300.0
    rng = random.Random(7)
    waits = [poll_wait(10.0, 300.0, 0, 0.1, rng) for _ in range(1000)]
    assert 9.0 <= min(waits) < 9.1 and 10.9 < max(waits) <= 11.0


def test_invalid_poll_settings_are_refused(lab: Lab) -> None:
    with pytest.raises(ValueError, match="0 <= jitter < 1"):
        lab.handler(jitter=1.5)


# -- several models ----------------------------------------------------------------------------


def test_a_handler_set_serves_several_models_by_name(tmp_path: Path, data: Path) -> None:
    labs = [make_lab(tmp_path, data, name=name) for name in ("iris", "lilac")]
    for lab in labs:
        lab.train()
    handlers = HandlerSet.from_definitions(
        [lab.definition for lab in labs], poll_interval=0.05, max_backoff=0.4
    )
    with handlers:
        assert sorted(handlers) == ["iris", "lilac"]
        assert handlers.predict("lilac", scores(data)).model == "lilac"
        with pytest.raises(UnknownModelError, match=r"no model 'iriss'.*did you mean 'iris'"):
            handlers.predict("iriss", scores(data))
        assert "iriss" not in handlers
        text = handlers.metrics_text()
    assert text.count("# TYPE model_steps_handler_version gauge") == 1
    assert 'model_steps_handler_version{model="iris"} 1' in text
    assert 'model_steps_handler_version{model="lilac"} 1' in text


def test_a_handler_set_refuses_two_handlers_for_one_model(lab: Lab) -> None:
    with pytest.raises(ValueError, match="two handlers serve model 'iris'"):
        HandlerSet([lab.handler(), lab.handler()])


def test_the_module_imports_without_airflow_configured(tmp_path: Path) -> None:
    import subprocess

    code = textwrap.dedent(
        """
        import sys, model_steps.serving.handler
        print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin", "HOME": str(tmp_path)},
    )
    assert result.stdout.strip() == "[]"
