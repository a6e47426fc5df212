"""The corpus of model definitions: every bad file reports exactly its problems, good files load.

Each ``invalid/<kind>/<case>.yaml`` has a ``<case>.expected`` beside it holding the problems
``model-steps validate`` must report, one per line, as ``line:column: field.path: message``:
the loader's (names only, as every DAG parse runs it) and, for a file the loader accepts, the
checks that import what it names (as the validate child and the train DAG's ``check`` task run
them). Cases of the ``data`` kind are validated with ``--data``: their tables' headers are read.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from model_steps.definition.data_locations import catalog_places
from model_steps.definition.loader import load_and_validate, locate_findings
from model_steps.errors import Problem, format_problem
from model_steps.runtime.preflight import check_definition
from model_steps.settings import allow_list

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"
INVALID = SPECS / "invalid"
VALID = SPECS / "valid"
ENVIRON = {
    "ASSETS_ROOT": "s3://bucket/models",
    "MODEL_STEPS_CORPUS_DATA": str(SPECS / "data"),
    "MODEL_STEPS_CORPUS_DAGS": str(SPECS / "code"),
    "MODEL_STEPS_ALLOWED_ENV": "ASSETS_*,DATA_ROOT,TEAM,ENVIRONMENT,SCORING_BUCKET,"
    "TRAIN_SCHEDULE,MODEL_NAME",
    "MODEL_STEPS_ALLOWED_DATA": "/srv/data/ /tmp/model-steps/data/ s3://lake/ "
    f"s3://warehouse-exports/ {SPECS}/",
}
"""A deployment that lets definitions read a few variables without the MODEL_STEPS_ prefix, and
data under two folders, two buckets and the corpus's folder (which holds its DAGs folder,
``code/``: allowed by a prefix, still refused)."""
ALLOW = allow_list(ENVIRON, [SPECS / "code"])
"""The corpus stands in for a DAGs folder whose own code is ``code/`` (``corpus_code``, and a
``joblib.py`` and ``logging.py`` named like installed modules)."""
ASSETS_ROOT = "/srv/models"
"""The deployment's default assets root: data never reaches it."""
KINDS = {"syntax", "schema", "semantic", "env", "security", "governance", "resolve", "data"}

INVALID_CASES = sorted(INVALID.rglob("*.yaml"))
VALID_CASES = sorted(VALID.glob("*.yaml"))


def case_id(path: Path) -> str:
    return path.relative_to(INVALID if INVALID in path.parents else VALID).as_posix()


def validate(path: Path) -> list[Problem]:
    """What ``model-steps validate`` reports for ``path`` (``--data`` for the data kind)."""
    catalog = load_and_validate(
        [path], ENVIRON, allowed=ALLOW, assets_root=ASSETS_ROOT, check_data=True
    )
    options = {} if path.parent.name == "data" else None
    places = catalog_places(ENVIRON, ALLOW.code_folders, [m.spec for m in catalog.models], None)
    problems = list(catalog.problems)
    for model in catalog.models:
        findings = check_definition(model.spec, ALLOW, options, places)
        problems += locate_findings(model.path, findings, ENVIRON)
    return sorted(problems, key=lambda p: (p.line, p.column))


def reported(path: Path) -> list[str]:
    """The problems as ``.expected`` files hold them: the corpus's own folder as ``<specs>``."""
    lines = [format_problem(p).removeprefix(f"{path}:") for p in validate(path)]
    return [line.replace(str(SPECS), "<specs>") for line in lines]


@pytest.mark.parametrize("path", INVALID_CASES, ids=case_id)
def test_a_bad_definition_reports_every_problem_at_its_line(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert expected, "an invalid case must expect at least one problem"
    assert reported(path) == expected


@pytest.mark.parametrize("path", VALID_CASES, ids=case_id)
def test_a_good_definition_validates_without_problems(path: Path) -> None:
    problems = validate(path)
    missing = [re.search(r"no module named '(\w+)'", p.message) for p in problems]
    absent = {found.group(1) for found in missing if found}
    assert all(importlib.util.find_spec(module) is None for module in absent)
    assert [p for p in problems if p.code != "missing_module"] == []
    assert len(load_and_validate([path], ENVIRON, allowed=ALLOW).models) == 1


def test_the_corpus_covers_every_kind_of_failure() -> None:
    kinds = {path.relative_to(INVALID).parts[0] for path in INVALID_CASES}
    assert len(INVALID_CASES) >= 25
    assert kinds == KINDS
    assert all(path.with_suffix(".expected").is_file() for path in INVALID_CASES)
    assert len(VALID_CASES) >= 5
