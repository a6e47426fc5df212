"""Run a documentation page's snippets as its reader would, for the tests of that page.

The conventions are the docs' own (docs/development.md): a ``console`` block holds ``$ ``
commands, run in order, each followed by the lines it must print (``...`` matches any text); a
command ending in ``&`` runs in the background until the page is done, and later commands are
retried until they succeed (a server starting); ``export`` lines carry over; ``8000`` is
replaced by a free port. A ``python`` block runs as a script. ``text`` and ``json`` blocks are
shown, not run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "Project", "blocks", "matches", "run_page"]

FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
RETRY_SECONDS = 60.0
COMMAND_SECONDS = 300.0


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    lang: str
    text: str
    line: int


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, in order."""
    found, lang, start, lines = [], None, 0, []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and lang is None:
            lang, start, lines = fence["lang"], number, []
        elif line.startswith("```") and lang is not None:
            found.append(Block(lang, "\n".join(lines) + "\n", start))
            lang = None
        elif lang is not None:
            lines.append(line)
    return found


def matches(expected: str, printed: str) -> bool:
    """Whether a line of ``printed`` is ``expected``, with ``...`` standing for any text."""
    pattern = ".*".join(re.escape(part) for part in expected.strip().split("..."))
    return any(re.fullmatch(pattern, line.strip()) for line in printed.splitlines())


@dataclass
class Project:
    """Where a page's snippets run: a folder, an environment and a port for ``8000``."""

    folder: Path
    env: dict[str, str]
    port: int
    exports: list[str] = field(default_factory=list)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``args`` in the project; its output is captured."""
        return subprocess.run(
            args,
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )

    def shell(self, command: str) -> subprocess.CompletedProcess[str]:
        script = "\n".join([*self.exports, command.replace("8000", str(self.port))])
        return self.run("bash", "-c", script)

    def start(self, command: str) -> None:
        script = "\n".join([*self.exports, f"exec {command.replace('8000', str(self.port))}"])
        log = (self.folder / f"background-{len(self.background)}.log").open("ab")
        self.background.append(
            subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.folder,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def stop(self) -> None:
        for process in self.background:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _commands(block: Block) -> Iterator[tuple[str, list[str]]]:
    command: str | None = None
    expected: list[str] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            if command is not None:
                yield command, expected
            command, expected = line[2:], []
        elif command is not None and line.strip():
            expected.append(line)
    if command is not None:
        yield command, expected


def _run_console(block: Block, project: Project) -> None:
    for command, expected in _commands(block):
        if command.startswith("export "):
            project.exports.append(command)
            continue
        if command.endswith("&"):
            project.start(command[:-1].strip())
            continue
        deadline = time.monotonic() + (RETRY_SECONDS if project.background else 0)
        while True:
            done = project.shell(command)
            missing = [line for line in expected if not matches(line, done.stdout)]
            if done.returncode == 0 and not missing:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"line {block.line}: `{command}` exited {done.returncode}; expected "
                    f"{missing}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
                )
            time.sleep(0.5)


def _run_python(block: Block, project: Project) -> None:
    script = project.folder / f"snippet-{block.line}.py"
    script.write_text(block.text.replace("8000", str(project.port)))
    done = project.run(sys.executable, str(script))
    expected = [line[2:] for line in block.text.splitlines() if line.startswith("# ")]
    missing = [line for line in expected if not matches(line, done.stdout)]
    assert done.returncode == 0 and not missing, (
        f"line {block.line}: exited {done.returncode}, expected {missing}\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )


def run_page(page: Path, project: Project) -> list[Block]:
    """Run every console and python block of ``page`` in ``project``; returns those run."""
    ran = []
    try:
        for block in blocks(page):
            if block.lang == "console":
                _run_console(block, project)
            elif block.lang == "python":
                _run_python(block, project)
            else:
                continue
            ran.append(block)
    finally:
        project.stop()
    return ran
