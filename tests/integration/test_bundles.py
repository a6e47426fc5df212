"""Models in a DAG bundle away from ``[core] dags_folder``: their own code and data rules.

Airflow 3 parses DAG bundles (a ``LocalDagBundle`` anywhere, a git bundle's checkout) and runs
each task from the bundle its DAG was read from. The bundle here holds the diabetes example under
another model name and with its code package renamed, so nothing of the session's DAGs folder
can stand in for the bundle's own code.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from model_steps.settings import load_settings
from model_steps.store.model_store import open_store
from tests.bundles import bundle_with, sync_bundle
from tests.conftest import EXAMPLES, SESSION_DAGS
from tests.integration.conftest import RunOutcome, run_in

pytestmark = pytest.mark.integration

BUNDLE = "models"
MODEL = "bundled_diabetes"


def bundle_files() -> dict[str, str]:
    """The diabetes example as a bundle of its own: its code package is ``bundle_code``."""
    text = (EXAMPLES / "diabetes.yaml").read_text()
    text = text.replace("name: diabetes\n", f"name: {MODEL}\n")
    text = text.replace("model_code.features:", "bundle_code.features:")
    code = EXAMPLES / "model_code"
    return {
        f"{MODEL}.yaml": text,
        **{f"bundle_code/{f.name}": f.read_text() for f in code.glob("*.py")},
    }


@pytest.fixture(scope="module")
def bundle(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A ``LocalDagBundle`` named ``models``, registered, parsed and synced like the processor."""
    folder = bundle_with(tmp_path_factory.mktemp("b") / "bundle", bundle_files())
    return sync_bundle(BUNDLE, folder)


def test_the_bundle_is_not_the_dags_folder(bundle: Any) -> None:
    assert Path(bundle.dag_folder) != SESSION_DAGS
    assert load_settings().dags_folder == SESSION_DAGS


def test_a_bundles_model_loads_with_its_own_code(bundle: Any) -> None:
    assert {f"{MODEL}__train", f"{MODEL}__infer"} <= set(bundle.dags)
    assert bundle.dags[f"{MODEL}__train"].tags >= {"model-steps"}


def test_a_task_runs_the_own_code_of_the_bundle_it_was_read_from(
    bundle: Any, failure_listener: Any, example_data: Path
) -> None:
    """The issue's repro: the callable was refused as not in the DAGs folder's own code."""
    outcome: RunOutcome = run_in(bundle, f"{MODEL}__train", failure_listener)
    assert outcome.errors == {}
    assert outcome.state == "success", outcome.task_states
    store = open_store(f"{load_settings().assets_root}/{MODEL}", {}, owner=MODEL)
    pointer = store.pointer()
    assert pointer is not None and pointer.version == 1


# -- a git bundle: each run's tasks read the bundle version the run was created from ------------

GIT_BUNDLE = "git-models"
GIT_MODEL = "git_diabetes"
REFUSAL = "version 2 of the features refuses to run"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def git_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A local repository with two versions of the bundle: the second one's code refuses."""
    files = {
        name.replace(MODEL, GIT_MODEL): text.replace(
            f"name: {MODEL}\n", f"name: {GIT_MODEL}\n"
        ).replace("retries: 2", "retries: 0")  # version 2's failure shows at once
        for name, text in bundle_files().items()
    }
    repo = bundle_with(tmp_path_factory.mktemp("git") / "repo", files)
    git(repo, "init", "-q", "-b", "main")
    first = commit_all(repo, "version 1")
    features = repo / "bundle_code" / "features.py"
    features.write_text(
        features.read_text()
        + f"\n\ndef add_interactions(data, pairs):\n    raise ValueError({REFUSAL!r})\n"
    )
    return repo, [first, commit_all(repo, "version 2")]


def checkout(repo: Path, version: str, storage: Path) -> Path:
    """The folder Airflow's git bundle checks ``version`` out to (a worker's view of a run)."""
    from airflow.providers.git.bundles.git import GitDagBundle

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(storage))
        bundle = GitDagBundle(
            name=GIT_BUNDLE, tracking_ref="main", repo_url=str(repo), version=version
        )
        bundle.initialize()
        return Path(bundle.path)


def test_each_git_bundle_version_runs_its_own_code(
    airflow_db: None,
    git_versions: tuple[Path, list[str]],
    failure_listener: Any,
    example_data: Path,
    tmp_path: Path,
) -> None:
    repo, versions = git_versions
    outcomes = {}
    for version in versions:
        folder = checkout(repo, version, tmp_path / "bundles")
        assert version in str(folder) and folder != SESSION_DAGS
        bag = sync_bundle(GIT_BUNDLE, folder, version)
        outcomes[version] = run_in(bag, f"{GIT_MODEL}__train", failure_listener)
    first, second = (outcomes[v] for v in versions)
    assert first.state == "success", first.errors
    assert second.state == "failed"
    assert REFUSAL in second.errors["features"]


def test_a_model_the_server_also_reads_from_its_folder_names_the_bundle_airflow_read(
    admin: Any,
) -> None:
    from tests.integration.test_api import summary

    assert summary(admin, "iris")["bundle"] == "dags-folder"
