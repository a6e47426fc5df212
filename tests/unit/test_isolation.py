"""One file cannot break the folder: bad bytes, odd paths and oversized YAML stay its problem.

A DAGs folder is shared; whatever one author's file makes the loader do wrong must leave every
other model loading, and the file must say where it went wrong.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from model_steps.cli import main
from model_steps.definition.loader import load_and_validate
from model_steps.definition.source import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from tests.definitions import definition

ALIAS_BOMB = "\n".join(
    [
        "apiVersion: model-steps/v1",
        "kind: Model",
        "name: bomb",
        'a0: &a0 ["x"]',
        *(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)),
        "metadata: {x: *a9}",
    ]
)
"""Nine levels of nine aliases: 600 bytes standing for 387 million values."""

HOSTILE = {
    "nul_url.yaml": definition("nul_url")
    .replace("train.csv", 'train\\0.csv"')
    .replace("url: s3", 'url: "s3'),
    "nul_root.yaml": definition("nul_root", 'assets:\n  root: "/srv/\\0models"\n'),
    "tilde_root.yaml": definition("tilde_root", "assets:\n  root: ~nosuchuser/store\n"),
    "relative_root.yaml": definition("relative_root", "assets:\n  root: models\n"),
    "bomb.yaml": ALIAS_BOMB,
    "deep.yaml": definition("deep", "metadata: {x: " + "[" * 200 + "]" * 200 + "}\n"),
    "huge.yaml": definition("huge", "description: " + "x" * MAX_FILE_BYTES + "\n"),
}
"""Every file the second attacker pass used to break the whole folder, each in its own way."""


@pytest.fixture
def shared_folder(tmp_path: Path) -> Path:
    (tmp_path / "churn.yaml").write_text(definition("churn"))
    for name, text in HOSTILE.items():
        (tmp_path / "team_x" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "team_x" / name).write_text(text)
    return tmp_path


def test_hostile_files_each_become_invalid_and_the_other_model_loads(shared_folder: Path) -> None:
    environ = {"MODEL_STEPS_ALLOWED_DATA": "s3://data/"}
    catalog = load_and_validate([shared_folder], environ, assets_root="/srv/m", check_data=True)
    assert [m.spec.name for m in catalog.models] == ["churn"]
    assert sorted(b.path.name for b in catalog.broken) == sorted(HOSTILE)
    assert all(p.line >= 1 and p.message for p in catalog.problems)


def test_an_alias_bomb_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(ALIAS_BOMB)
    started = time.perf_counter()
    (broken,) = load_and_validate([tmp_path], {}).broken
    assert time.perf_counter() - started < 1.0
    (problem,) = broken.problems
    assert (problem.line, problem.column) == (9, 5)  # a5: 125,479 values
    assert problem.message.startswith(f"this value expands to more than {MAX_NODES} values")


def test_nesting_past_the_limit_is_refused_at_the_deepest_line(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text(HOSTILE["deep.yaml"])
    (broken,) = load_and_validate([tmp_path], {}).broken
    assert broken.problems[0].message.startswith(f"values nest more than {MAX_DEPTH} levels")


def test_nesting_within_the_limit_still_loads(tmp_path: Path) -> None:
    nested = "metadata: {x: " + "[" * (MAX_DEPTH - 3) + "]" * (MAX_DEPTH - 3) + "}\n"
    (tmp_path / "deep.yaml").write_text(definition("deep", nested))
    assert [m.spec.name for m in load_and_validate([tmp_path], {}).models] == ["deep"]


def test_a_file_over_the_size_limit_is_refused_without_parsing(tmp_path: Path) -> None:
    (tmp_path / "huge.yaml").write_text(HOSTILE["huge.yaml"])
    (broken,) = load_and_validate([tmp_path], {}).broken
    assert broken.problems[0].message.endswith(f"a definition is at most {MAX_FILE_BYTES} bytes")


def test_other_yaml_over_the_size_limit_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "fixtures.yaml").write_text("rows:\n" + "  - 1\n" * MAX_FILE_BYTES)
    assert load_and_validate([tmp_path], {}).broken == ()


def test_validate_reports_each_hostile_file_and_exits_1_without_a_traceback(
    shared_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_STEPS_ALLOWED_DATA", "s3://data/")
    assert main(["validate", str(shared_folder)]) == 1
    out = capsys.readouterr().out
    reported = {line.split(":", 1)[0] for line in out.splitlines() if line.startswith("/")}
    assert reported == {str(shared_folder / "team_x" / name) for name in HOSTILE}
    assert "Traceback" not in out


TRAP = '''\
class _Meta(type):
    def __getattr__(cls, name):
        raise RuntimeError("no attribute is looked up on this class")


class Trap(metaclass=_Meta):
    """A class of the DAGs folder's own code whose attribute lookup raises, not AttributeError."""
'''


def test_a_model_whose_import_checks_fail_unexpectedly_leaves_the_others_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_STEPS_ALLOWED_DATA", "s3://data/")
    (tmp_path / "isolation_trap.py").write_text(TRAP)
    trapped = definition("trapped").replace(
        "package: sklearn.linear_model\n      class: LinearRegression",
        "package: isolation_trap\n      class: Trap",
    )
    (tmp_path / "trapped.yaml").write_text(trapped)
    (tmp_path / "churn.yaml").write_text(definition("churn"))
    (tmp_path / "broken.yaml").write_text(definition("broken").replace("LinearRegression", "Nope"))
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'broken.yaml'}:")  # still checked after the trap
    assert out[1] == (
        f"{tmp_path / 'trapped.yaml'}:1:1: this definition could not be checked (RuntimeError); "
        "nothing of it is used until the file is fixed"
    )
