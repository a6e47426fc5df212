"""Nothing the CLI prints from a definition or a store reaches the terminal as a control code.

Clear screen, window title and OSC 52 (write the operator's clipboard) in a card, a run id or a
file name are shown as visible escapes; line breaks stay line breaks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_steps.cli import main
from model_steps.store.model_store import open_store
from model_steps.terminal import escape_controls
from tests.assets import publish_fitted
from tests.definitions import definition

HOSTILE = "\x1b[2J\x1b]0;owned\x07\x1b]52;c;ZWNobyBvd25lZA==\x07\x9b31m\u202e"
"""Clear screen, set the window title, write the clipboard, a C1 CSI, a right-to-left override."""
SHOWN = "\\x1b[2J\\x1b]0;owned\\x07\\x1b]52;c;ZWNobyBvd25lZA==\\x07\\x9b31m\\u202e"


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model ``churn`` with one version whose card and run id hold escape sequences."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "churn.yaml").write_text(definition("churn", f"assets: {{root: {tmp_path}}}\n"))
    monkeypatch.setenv("MODEL_STEPS_DAGS_FOLDER", str(dags))
    store = open_store(f"{tmp_path}/churn")
    publish_fitted(store, run_id=f"manual{HOSTILE}", card=f"# churn\n\n{HOSTILE}\n")


def test_a_card_from_the_store_is_printed_with_its_escape_sequences_visible(
    published: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["card", "churn"]) == 0
    out = capsys.readouterr().out
    assert out == f"# churn\n\n{SHOWN}\n"


def test_versions_show_a_stored_run_id_with_its_escape_sequences_visible(
    published: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["versions", "churn"]) == 0
    out = capsys.readouterr().out
    assert f"manual{SHOWN}" in out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out


def test_a_file_name_holding_escape_sequences_is_printed_escaped_by_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "\x1b]0;owned\x07.yaml"
    path.write_text(definition("churn", "statuss: deployed\n"))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;owned\\x07.yaml:" in out


def test_line_breaks_and_tabs_are_kept() -> None:
    assert escape_controls("a\n\tb\r\x00") == "a\n\tb\\x0d\\x00"
