"""The DAG processor's parse watcher: a changed YAML's DAG file is asked for, once, and only it."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, select
from sqlalchemy.orm import Session

from model_steps.airflow.parse_watch import FolderWatch, ParseWatch
from model_steps.airflow.shards import SHARD_FOLDER, dag_file_name
from model_steps.definition.shards import shard_of
from tests.conftest import EXAMPLES
from tests.definitions import definition
from tests.integration.conftest import parse_folder

pytestmark = pytest.mark.integration

NAMES = [f"model_{i:02d}" for i in range(7)]
SHARDS = 3
"""Seven models at most three a file (eight with a newcomer): the loader and two shard files."""
BUNDLE = "watched"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[Path]:
    """A DAGs folder spread over three DAG files, parsed once, and no parse asked for yet."""
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLES / "model_steps_loader.py", dags)
    for name in NAMES:
        (dags / f"{name}.yaml").write_text(definition(name))
    monkeypatch.setenv("MODEL_STEPS_PARSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MODEL_STEPS_MODELS_PER_SHARD", "3")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", "0")
    parse_folder(dags)  # the loader writes its shard files
    clear_requests()
    yield dags
    clear_requests()


def requests() -> list[str]:
    """The DAG files of the bundle asked for and not claimed yet (one entry per row)."""
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session

    with create_session() as session:
        return sorted(
            session.scalars(
                select(DagPriorityParsingRequest.relative_fileloc).where(
                    DagPriorityParsingRequest.bundle_name == BUNDLE
                )
            )
        )


def clear_requests() -> None:
    """Claim every request of the bundle, as the DAG processor does."""
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(
            delete(DagPriorityParsingRequest).where(DagPriorityParsingRequest.bundle_name == BUNDLE)
        )


def watching(folder: Path) -> ParseWatch:
    """A watcher of ``folder`` that took its first look (the baseline)."""
    watch = ParseWatch(folders=[FolderWatch(BUNDLE, folder)])
    assert watch.poll() == {}
    return watch


def named_in_shard(index: int, prefix: str = "new") -> str:
    """A model name whose YAML the loader builds in DAG file ``index``."""
    return next(
        f"{prefix}_{i}" for i in range(1000) if shard_of(f"{prefix}_{i}.yaml", SHARDS) == index
    )


def built_by(folder: Path, dag_id: str) -> str:
    """The DAG file Airflow's parse of ``folder`` builds ``dag_id`` from."""
    bag = parse_folder(folder)
    return str(bag.dags[dag_id].relative_fileloc)


def asked_and_dropped(folder: Path) -> ParseWatch:
    """A watcher that asked for DAG file 1 for a new YAML, a request Airflow then dropped."""
    watch = watching(folder)
    name = named_in_shard(1)
    (folder / f"{name}.yaml").write_text(definition(name))
    watch.poll()
    clear_requests()  # claimed while that file's parse ran: Airflow drops the request
    return watch


def parse_ended(folder: Path) -> None:
    """The loader records a parse of DAG file 1 that began 60 s ago and just ended."""
    from model_steps.airflow.shards import record_parse
    from model_steps.settings import load_settings

    record_parse(load_settings(), folder, 1, 60.0, len(NAMES) + 1)


def test_an_unchanged_folder_asks_for_nothing(folder: Path) -> None:
    watch = watching(folder)
    assert watch.poll() == {}
    assert requests() == []


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_new_yaml_asks_for_the_dag_file_that_builds_it(folder: Path, index: int) -> None:
    watch = watching(folder)
    name = named_in_shard(index)
    (folder / f"{name}.yaml").write_text(definition(name))
    watch.poll()
    assert requests() == [dag_file_name(index)]
    assert built_by(folder, f"{name}__train") == dag_file_name(index)


def test_an_edited_yaml_asks_for_its_dag_file(folder: Path) -> None:
    watch = watching(folder)
    name = NAMES[0]
    (folder / f"{name}.yaml").write_text(definition(name, "description: edited\n"))
    watch.poll()
    assert requests() == [dag_file_name(shard_of(f"{name}.yaml", SHARDS))]


def test_a_removed_yaml_asks_for_the_dag_file_that_built_it(folder: Path) -> None:
    watch = watching(folder)
    name = next(n for n in NAMES if shard_of(f"{n}.yaml", SHARDS) > 0)
    built = built_by(folder, f"{name}__train")
    (folder / f"{name}.yaml").unlink()
    watch.poll()
    assert requests() == [built]


def test_a_changed_file_is_touched_so_airflow_s_queue_keeps_it_first(folder: Path) -> None:
    watch = watching(folder)
    name = named_in_shard(2)
    target = folder / SHARD_FOLDER / "shard_002.py"
    before = target.stat().st_mtime
    time.sleep(0.02)
    (folder / f"{name}.yaml").write_text(definition(name))
    watch.poll()
    assert target.stat().st_mtime > before
    assert target.stat().st_mtime >= (folder / f"{name}.yaml").stat().st_mtime


def test_a_burst_of_edits_asks_for_each_dag_file_once_per_look(folder: Path) -> None:
    watch = watching(folder)
    for round_ in range(3):  # three looks, none of their asks claimed meanwhile
        for name in NAMES:
            (folder / f"{name}.yaml").write_text(definition(name, f"description: r{round_}\n"))
        for i in range(20):
            (folder / f"burst_{round_}_{i}.yaml").write_text("not even a model")
        asked = watch.poll()
        assert len(asked[BUNDLE]) <= 1 + len(list((folder / SHARD_FOLDER).iterdir()))
        assert len(requests()) == len(set(requests()))
    every_file = {"model_steps_loader.py"} | {
        f"{SHARD_FOLDER}/{p.name}" for p in (folder / SHARD_FOLDER).iterdir()
    }
    assert set(requests()) <= every_file


def test_a_symlinked_shard_folder_asks_only_for_the_loader(folder: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (folder / SHARD_FOLDER).rename(elsewhere)
    (folder / SHARD_FOLDER).symlink_to(elsewhere)
    watch = watching(folder)
    name = named_in_shard(2)
    (folder / f"{name}.yaml").write_text(definition(name))
    watch.poll()
    assert requests() == ["model_steps_loader.py"]


def test_a_folder_without_its_loader_is_not_looked_at_until_it_is_back(folder: Path) -> None:
    watch = watching(folder)
    loader = folder / "model_steps_loader.py"
    kept = loader.read_bytes()
    loader.unlink()
    for name in NAMES:
        (folder / f"{name}.yaml").unlink()
    assert watch.poll() == {}
    for name in NAMES:
        (folder / f"{name}.yaml").write_text(definition(name))
    loader.write_bytes(kept)
    watch.poll()
    assert "model_steps_loader.py" in requests()


@contextmanager
def broken_db(path: Path) -> Iterator[Session]:
    """A session on a database without Airflow's tables: every query fails."""
    with Session(create_engine(f"sqlite:///{path}")) as session:
        yield session


def test_a_db_error_is_survived_and_the_ask_is_written_at_the_next_look(
    folder: Path, tmp_path: Path
) -> None:
    from airflow.utils.session import create_session

    watch = ParseWatch(
        folders=[FolderWatch(BUNDLE, folder)], sessions=lambda: broken_db(tmp_path / "x.db")
    )
    watch.poll()
    name = named_in_shard(1)
    (folder / f"{name}.yaml").write_text(definition(name))
    assert watch.poll() == {}  # the write failed: logged, nothing raised
    assert requests() == []
    watch.sessions = lambda: create_session(scoped=False)
    watch.poll()
    assert requests() == [dag_file_name(1)]


def watcher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "model-steps-parse-watch"]


def wait_for(check: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_in_any_job_but_the_dag_processor_the_watcher_ends_at_once(airflow_db: None) -> None:
    from airflow.jobs.job import Job

    job = Job()  # Airflow's listener hook runs here, before the runner names the job
    job.job_type = "SchedulerJob"
    assert wait_for(lambda: not watcher_threads(), 2.0)


def test_in_the_dag_processor_the_watcher_runs_until_the_job_stops(airflow_db: None) -> None:
    from airflow.jobs.job import Job
    from airflow.listeners.listener import get_listener_manager

    job = Job()
    job.job_type = "DagProcessorJob"
    time.sleep(0.2)
    assert len(watcher_threads()) == 1
    get_listener_manager().hook.before_stopping(component=job)
    assert wait_for(lambda: not watcher_threads())


def test_a_file_whose_running_parse_began_before_the_change_is_asked_again_once_it_ends(
    folder: Path,
) -> None:
    watch = asked_and_dropped(folder)
    assert watch.poll() == {}  # that parse has not ended: nothing to say yet
    parse_ended(folder)
    watch.poll()
    assert requests() == [dag_file_name(1)]


def test_a_file_parsed_since_the_change_is_not_asked_again(folder: Path) -> None:
    watch = asked_and_dropped(folder)
    parse_folder(folder)  # what the DAG processor does with the request
    assert watch.poll() == {}
    assert requests() == []


def test_a_change_is_given_up_after_three_processor_timeouts(folder: Path) -> None:
    watch = asked_and_dropped(folder)
    parse_ended(folder)
    assert watch.poll(now=time.time() + 3 * 50.0 + 1) == {}
    assert requests() == []


def test_the_watcher_looks_at_airflow_s_local_dag_bundles(session_dags: Path) -> None:
    from model_steps.airflow.parse_watch import local_bundles

    assert dict(local_bundles())["dags-folder"] == session_dags


def test_a_fork_of_the_dag_processor_waits_for_the_watcher_s_look_to_end() -> None:
    from model_steps.airflow import parse_watch

    parse_watch._guard_forks()  # what the watcher does in the DAG processor
    looking = threading.Event()

    def look() -> None:
        with parse_watch._quiet:  # what the watcher holds during a look
            looking.set()
            time.sleep(0.5)

    thread = threading.Thread(target=look)
    thread.start()
    looking.wait()
    started = time.monotonic()
    child = os.fork()
    if child == 0:
        os._exit(0)  # a parsing process would import the package here
    waited = time.monotonic() - started
    os.waitpid(child, 0)
    thread.join()
    assert waited >= 0.3


def test_a_yaml_copied_with_an_old_modification_time_still_needs_a_parse_after_the_copy(
    folder: Path,
) -> None:
    watch = watching(folder)
    name = named_in_shard(1)
    (folder / f"{name}.yaml").write_text(definition(name))
    a_year_ago = time.time() - 365 * 86400
    os.utime(folder / f"{name}.yaml", (a_year_ago, a_year_ago))  # as cp -p or rsync -t keep it
    watch.poll()
    clear_requests()
    parse_ended(folder)  # begun before the copy
    watch.poll()
    assert requests() == [dag_file_name(1)]


def test_a_file_already_asked_for_is_not_asked_for_again(folder: Path) -> None:
    from airflow.utils.session import create_session

    from model_steps.airflow.parse_watch import request_parses

    def sessions() -> Any:
        return create_session(scoped=False)

    assert request_parses(sessions, BUNDLE, folder, ["model_steps_loader.py"]) == 1
    assert request_parses(sessions, BUNDLE, folder, ["model_steps_loader.py"]) == 0
    assert requests() == ["model_steps_loader.py"]
