"""The corpus of model definitions: every bad file reports exactly its problems, good files load.

Each ``invalid/<kind>/<case>.yaml`` has a ``<case>.expected`` beside it holding the problems the
loader must report, one per line, as ``line:column: field.path: message``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_steps.definition.loader import load_and_validate
from model_steps.errors import format_problem

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"
INVALID = SPECS / "invalid"
VALID = SPECS / "valid"
# The corpus stands in for a DAGs folder whose own code lives in `model_code`, in a deployment
# that lets definitions read a few variables without the MODEL_STEPS_ prefix.
ENVIRON = {
    "ASSETS_ROOT": "s3://bucket/models",
    "MODEL_STEPS_ALLOWED_IMPORTS": "model_code",
    "MODEL_STEPS_ALLOWED_ENV": "ASSETS_*,DATA_ROOT,TEAM,ENVIRONMENT,SCORING_BUCKET,"
    "TRAIN_SCHEDULE,MODEL_NAME",
}
KINDS = {"syntax", "schema", "semantic", "env", "security", "governance"}

INVALID_CASES = sorted(INVALID.rglob("*.yaml"))
VALID_CASES = sorted(VALID.glob("*.yaml"))


def case_id(path: Path) -> str:
    return path.relative_to(INVALID if INVALID in path.parents else VALID).as_posix()


def reported(path: Path) -> list[str]:
    catalog = load_and_validate([path], ENVIRON)
    return [format_problem(p).removeprefix(f"{path}:") for p in catalog.problems]


@pytest.mark.parametrize("path", INVALID_CASES, ids=case_id)
def test_a_bad_definition_reports_every_problem_at_its_line(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert expected, "an invalid case must expect at least one problem"
    assert reported(path) == expected


@pytest.mark.parametrize("path", VALID_CASES, ids=case_id)
def test_a_good_definition_loads_without_problems(path: Path) -> None:
    catalog = load_and_validate([path], ENVIRON)
    assert catalog.problems == ()
    assert len(catalog.models) == 1


def test_the_corpus_covers_every_kind_of_failure() -> None:
    kinds = {path.relative_to(INVALID).parts[0] for path in INVALID_CASES}
    assert len(INVALID_CASES) >= 25
    assert kinds == KINDS
    assert all(path.with_suffix(".expected").is_file() for path in INVALID_CASES)
    assert len(VALID_CASES) >= 5
