"""The README's field reference is generated from the schema and must not go stale."""

from __future__ import annotations

from model_steps.definition.reference import splice
from tests.conftest import REPO


def test_readme_field_reference_matches_the_schema() -> None:
    readme = (REPO / "README.md").read_text()
    assert splice(readme) == readme, "README is stale: run `make docs`"
