"""The docs' field reference is generated from the schema and must not go stale."""

from __future__ import annotations

import re

from model_steps.definition.reference import splice
from tests.conftest import REPO

FIELDS = REPO / "docs" / "reference" / "fields.md"


def test_the_field_reference_page_matches_the_schema() -> None:
    page = FIELDS.read_text()
    assert splice(page) == page, "docs/reference/fields.md is stale: run `make docs`"


def test_every_command_and_option_of_the_command_line_is_in_its_reference_page() -> None:
    from model_steps.cli import _parser

    page = (REPO / "docs" / "reference" / "cli.md").read_text()
    [commands] = [a for a in _parser()._actions if a.dest == "command"]
    assert isinstance(commands.choices, dict)
    expected = [f"model-steps {name}" for name in commands.choices] + [
        option
        for command in commands.choices.values()
        for action in command._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    missing = [t for t in expected if not re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", page)]
    assert missing == []
