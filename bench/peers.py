"""Peers to benchmark against, each in its own virtualenv under ``bench/.venvs/`` (git-ignored).

A peer (MLServer, dag-factory) is installed from PyPI on first use, next to nothing of ours, so
its dependencies never meet the project's and ``make test`` never needs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"


def peer_python(name: str, packages: Sequence[str]) -> Path | None:
    """The interpreter of peer ``name`` with ``packages``, installed once; None if that fails."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    if (venv / ".installed").exists():
        return python
    print(f"... installing {', '.join(packages)} into {venv}", file=sys.stderr, flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    VENVS.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *packages],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as error:
        print(f"... {name} did not install ({error}): left out", file=sys.stderr, flush=True)
        return None
    (venv / ".installed").touch()
    return python
