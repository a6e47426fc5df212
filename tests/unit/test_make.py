"""``make test`` says which system packages it needs before any test fails for their lack."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO


def make_system(path: str) -> subprocess.CompletedProcess[str]:
    """``make system`` with ``path`` as the whole PATH its recipe sees."""
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "system", f"PATH={path}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_missing_chromium_and_redis_are_named_with_the_command_that_installs_them(
    tmp_path: Path,
) -> None:
    # A PATH with a shell and ls but neither chromium nor redis-server.
    for tool in ("sh", "ls"):
        (tmp_path / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    result = make_system(str(tmp_path))
    assert result.returncode != 0
    assert "pip cannot install: chromium redis-server" in result.stdout
    assert "sudo apt-get install -y chromium redis-server" in result.stdout
