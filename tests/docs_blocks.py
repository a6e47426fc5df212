"""The fenced blocks of the README and the docs, read by the conventions of docs/development.md.

Kept apart from the tests that run them, so the unit tests can hold every page to the
conventions (no unknown kind of block, few blocks marked not-run, each with its reason) without
running anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import REPO

__all__ = [
    "MAX_NOT_RUN",
    "Block",
    "Command",
    "blocks",
    "commands",
    "pages",
    "run_by",
    "yaml_kind",
]

DOCS = REPO / "docs"
MAX_NOT_RUN = 6
"""Blocks marked not-run, in all: they must stay rare (``make run`` and ``make test`` are two)."""

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)(?P<info>.*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
_NOT_RUN = re.compile(r"^\s*<!-- docs-test: not-run(?: \((?P<reason>[^)]*)\))? -->\s*$")
_KEY = re.compile(r"^[A-Za-z_][\w-]*:")
_RUN_BY = re.compile(r"^<!-- docs-test: run by (?P<test>tests/[\w/]+\.py) -->$", re.M)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language and title, its text (dedented)."""

    page: str
    line: int
    lang: str
    title: str | None
    text: str
    not_run: str | None
    """The reason given by a ``not-run`` marker on the line before, "" for a marker without one,
    None when the block runs."""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass(frozen=True)
class Command:
    """One ``$ `` command of a console block and the output lines shown after it."""

    text: str
    expected: tuple[str, ...]

    @property
    def background(self) -> bool:
        return self.text.endswith("&")

    @property
    def carried(self) -> bool:
        """Whether it sets state later commands need (a sourced file, a variable, a folder)."""
        return self.text.startswith((". ", "source ", "export ", "cd "))


def pages() -> list[Path]:
    """Every page, in the order a reader follows: mkdocs.yml's nav, other pages, the README."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    ordered = [DOCS / page for page in _nav_pages(config.get("nav", []))]
    rest = sorted(p for p in DOCS.rglob("*.md") if p not in ordered)
    return [*ordered, *rest, REPO / "README.md"]


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav] if nav.endswith(".md") else []
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def run_by(page: Path) -> str | None:
    """The test that runs a page's blocks itself, from a ``run by`` marker; None for the others.

    A guide whose commands need a set-up of their own (a cluster, a compose file, a second
    Airflow) names the test that gives it one; the shared runner then only validates its models.
    """
    found = _RUN_BY.search(page.read_text())
    return found["test"] if found else None


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one page, in order."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent = len(opening["indent"])
        end = index + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [
            line[indent:] if line[:indent].strip() == "" else line
            for line in lines[index + 1 : end]
        ]
        before = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = _NOT_RUN.match(before)
        title = _TITLE.search(opening["info"])
        found.append(
            Block(
                page=str(page.relative_to(REPO)),
                line=index + 1,
                lang=opening["lang"],
                title=title["title"] if title else None,
                text="\n".join(body) + "\n",
                not_run=(marker["reason"] or "") if marker else None,
            )
        )
        index = end + 1
    return found


def yaml_kind(block: Block) -> str:
    """``model``, ``steps``, ``fields`` or ``unknown``, by the first line that is not a comment."""
    first = next(
        (
            line
            for line in block.text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ),
        "",
    )
    if first.startswith("apiVersion:"):
        return "model"
    if first.lstrip().startswith("- id:"):
        return "steps"
    if _KEY.match(first):
        return "fields"
    return "unknown"


def commands(block: Block) -> list[Command]:
    """The ``$ `` commands of a console block (``\\`` continues a command on the next line)."""
    found: list[Command] = []
    text: str | None = None
    expected: list[str] = []
    lines = iter(block.text.splitlines())
    for line in lines:
        if line.startswith("$ "):
            if text is not None:
                found.append(Command(text, tuple(expected)))
            text, expected = line[2:].strip(), []
            while text.endswith("\\"):
                text = text[:-1].rstrip() + " " + next(lines, "").strip()
        elif text is not None and line.strip():
            expected.append(line.strip())
    if text is not None:
        found.append(Command(text, tuple(expected)))
    return found
