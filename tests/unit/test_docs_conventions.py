"""Every page of the docs and the README holds its snippets to the conventions the tests run.

``tests/integration/test_docs_examples.py`` runs the blocks; these checks need nothing running,
so a page with a block no test would understand fails at once (docs/development.md lists the
conventions).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.docs_blocks import MAX_NOT_RUN, Block, blocks, commands, pages, run_by, yaml_kind

PAGES = pages()
BLOCKS = [block for page in PAGES for block in blocks(page)]
LANGUAGES = {"yaml", "console", "python", "text", "json"}
OWN_TEST_LANGUAGES = {"bash", "ini"}
"""Shell scripts and config files: only on a page whose own test runs them."""
RUN_BY = {page: test for page in PAGES if (test := run_by(page)) is not None}


def test_the_walk_covers_the_readme_and_every_page_under_docs() -> None:
    assert REPO / "README.md" in PAGES
    assert set(PAGES) >= set((REPO / "docs").rglob("*.md"))


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.where)
def test_every_block_says_what_it_is(block: Block) -> None:
    own_test = REPO / block.page in RUN_BY
    allowed = LANGUAGES | OWN_TEST_LANGUAGES if own_test else LANGUAGES
    assert block.lang in allowed, f"{block.where}: a fenced block needs one of {allowed}"
    if block.lang == "yaml" and block.not_run is None and not own_test:
        assert yaml_kind(block) != "unknown", (
            f"{block.where}: a YAML block starts with `apiVersion:` (a model), `  - id:` (steps) "
            "or a model's top-level key (fields)"
        )
    if block.lang == "console":
        assert block.text.startswith("$ "), f"{block.where}: a console block starts with `$ `"
        assert commands(block)


def test_blocks_marked_not_run_are_rare_and_say_why() -> None:
    marked = [block for block in BLOCKS if block.not_run is not None]
    assert [b.where for b in marked if not b.not_run.strip()] == []
    assert len(marked) <= MAX_NOT_RUN, [b.where for b in marked]


def test_a_block_titled_with_a_file_of_the_repository_shows_that_file_as_it_is() -> None:
    titled = [b for b in BLOCKS if b.title and (REPO / b.title).is_file()]
    assert titled  # the tutorial shows dags/iris.yaml
    for block in titled:
        assert block.text == (REPO / block.title).read_text(), f"{block.where} != {block.title}"


def test_the_readme_fits_on_a_few_screens_and_its_links_lead_somewhere() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)", readme)
    local = [link for link in links if "://" not in link]
    assert local and [link for link in local if not (REPO / link).exists()] == []


@pytest.mark.parametrize("page", sorted(RUN_BY), ids=lambda p: str(p.relative_to(REPO)))
def test_a_page_run_by_its_own_test_names_a_test_that_reads_it(page: Path) -> None:
    test = REPO / RUN_BY[page]
    assert test.is_file(), f"{page}: no test {RUN_BY[page]}"
    assert page.name in test.read_text(), f"{RUN_BY[page]} does not read {page.name}"
