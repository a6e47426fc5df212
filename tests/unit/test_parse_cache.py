"""The parse cache: what it reuses, what makes it miss, and what it refuses to trust."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from model_steps.definition.cache import ParseCache
from model_steps.definition.loader import LoadedModel, allow_list_for, load_and_validate
from model_steps.settings import AllowList, load_settings
from tests.definitions import definition

USES_ENV = """\
description: kept under ${MODEL_STEPS_TEAM:-shared}
"""


@pytest.fixture
def cache(tmp_path: Path) -> ParseCache:
    opened = ParseCache.open(tmp_path / "cache")
    assert opened is not None
    return opened


def write(folder: Path, text: str, name: str = "churn.yaml") -> Path:
    path = folder / "dags" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(path: Path, cache: ParseCache, environ: dict[str, str] | None = None) -> LoadedModel:
    (model,) = load_and_validate([path.parent], environ or {}, cache=cache).models
    return model


def entries(cache: ParseCache) -> list[Path]:
    return sorted(cache.folder.glob("*.json"))


def kept(folder: Path, cache: ParseCache) -> tuple[Path, Path]:
    """A valid definition loaded once, and the cache entry it left."""
    path = write(folder, definition("churn"))
    load(path, cache)
    (entry,) = entries(cache)
    return path, entry


def read_entry(entry: Path) -> tuple[bytes, dict[str, Any]]:
    """An entry's signature line and its document."""
    mac, _, body = entry.read_bytes().partition(b"\n")
    return mac, json.loads(body)


def test_a_valid_definition_is_kept_and_read_back_as_the_same_spec(
    tmp_path: Path, cache: ParseCache
) -> None:
    path = write(tmp_path, definition("churn"))
    first = load(path, cache)
    assert len(entries(cache)) == 1
    assert cache.get(path, path.read_bytes(), {}, _allowed(path)) == first.spec
    assert load(path, cache).spec == first.spec


def test_an_edited_file_is_validated_again(tmp_path: Path, cache: ParseCache) -> None:
    path = write(tmp_path, definition("churn"))
    load(path, cache)
    write(tmp_path, definition("churn", "description: edited\n"))
    assert load(path, cache).spec.description == "edited"


def test_a_changed_environment_value_is_read_again(tmp_path: Path, cache: ParseCache) -> None:
    path = write(tmp_path, definition("churn", USES_ENV))
    assert load(path, cache).spec.description == "kept under shared"
    team = {"MODEL_STEPS_TEAM": "fraud"}
    assert load(path, cache, team).spec.description == "kept under fraud"
    assert load(path, cache, {"MODEL_STEPS_TEAM": "risk"}).spec.description == "kept under risk"


def test_an_invalid_definition_is_never_kept(tmp_path: Path, cache: ParseCache) -> None:
    write(tmp_path, definition("churn").replace("class:", "klass:"))
    catalog = load_and_validate([tmp_path / "dags"], {}, cache=cache)
    assert catalog.broken and not catalog.models
    assert entries(cache) == []


def test_a_file_broken_after_a_good_parse_stands_as_its_last_good_definition_with_its_problems(
    tmp_path: Path, cache: ParseCache
) -> None:
    path = write(tmp_path, definition("churn", "description: the good one\n"))
    load(path, cache)
    write(
        tmp_path, definition("churn", "description: the broken one\n").replace("class:", "klass:")
    )
    stand_in = load(path, cache)
    assert stand_in.spec.description == "the good one"
    assert [p.field for p in stand_in.problems] == ["steps[0].parameters.klass"]
    assert load_and_validate([path.parent], {}).broken  # without the cache: broken, as ever


def test_no_last_good_definition_stands_in_once_an_environment_value_it_read_changed(
    tmp_path: Path, cache: ParseCache
) -> None:
    path = write(tmp_path, definition("churn", USES_ENV))
    load(path, cache)
    write(tmp_path, definition("churn", USES_ENV).replace("class:", "klass:"))
    assert cache.last_good(path, {}, _allowed(path)) is not None
    assert cache.last_good(path, {"MODEL_STEPS_TEAM": "fraud"}, _allowed(path)) is None


def test_a_cache_is_not_made_where_none_is_and_creating_is_not_asked(tmp_path: Path) -> None:
    assert ParseCache.open(tmp_path / "cache", create=False) is None
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "cache.key").exists()
    assert ParseCache.open(tmp_path / "cache") is not None
    assert ParseCache.open(tmp_path / "cache", create=False) is not None


def test_the_values_read_are_kept_as_keyed_hashes_in_private_files(
    tmp_path: Path, cache: ParseCache
) -> None:
    path = write(tmp_path, definition("churn", USES_ENV))
    load(path, cache, {"MODEL_STEPS_TEAM": "team-name-7f3a"})
    (entry,) = entries(cache)
    reads = read_entry(entry)[1]["reads"]
    assert "MODEL_STEPS_TEAM" in reads  # with every setting validation looked up
    assert "team-name-7f3a" not in json.dumps(reads)
    assert entry.stat().st_mode & 0o077 == 0
    assert cache.folder.stat().st_mode & 0o077 == 0


def test_an_entry_edited_in_the_cache_is_refused_and_replaced(
    tmp_path: Path, cache: ParseCache, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever can write the cache folder must not change what a DAG runs."""
    path, entry = kept(tmp_path, cache)
    mac, document = read_entry(entry)
    document["spec"] = document["spec"].replace("LinearRegression", "Ridge")
    entry.write_bytes(mac + b"\n" + json.dumps(document).encode())
    with caplog.at_level(logging.WARNING):
        model = load(path, cache)
    assert model.spec.steps[0].parameters.class_ == "LinearRegression"
    assert "refusing a parse-cache entry that is not ours" in caplog.text
    assert "Ridge" not in entry.read_text()  # the fresh validation replaced it


def test_an_entry_signed_with_another_key_is_refused(tmp_path: Path, cache: ParseCache) -> None:
    path = write(tmp_path, definition("churn"))
    forger = ParseCache(cache.folder, b"an attacker's own key, 32 bytes+")
    real = load(path, cache)
    forged = real.spec.model_copy(update={"description": "forged"})
    reads = forger.recorder({})
    forger.put(path, path.read_bytes(), reads, _allowed(path), forged)
    assert load(path, cache).spec.description != "forged"


def test_a_key_file_others_can_read_turns_the_cache_off(tmp_path: Path) -> None:
    assert ParseCache.open(tmp_path / "cache") is not None
    key = tmp_path / "cache.key"
    assert key.stat().st_mode & 0o077 == 0
    key.chmod(0o644)
    assert ParseCache.open(tmp_path / "cache") is None


def test_a_symlinked_key_file_turns_the_cache_off_and_parsing_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chosen = tmp_path / "a key someone else chose"
    chosen.write_text("k" * 64)
    chosen.chmod(0o600)
    (tmp_path / "cache.key").symlink_to(chosen)
    path = write(tmp_path, definition("churn"))
    with caplog.at_level(logging.WARNING):
        cache = ParseCache.open(tmp_path / "cache")
    assert cache is None
    assert "cache.key is a symbolic link" in caplog.text
    (model,) = load_and_validate([path.parent], {}, cache=cache).models
    assert model.spec.name == "churn"
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_symlinked_entry_is_not_followed_and_is_replaced(
    tmp_path: Path, cache: ParseCache, caplog: pytest.LogCaptureFixture
) -> None:
    path, entry = kept(tmp_path, cache)
    elsewhere = tmp_path / "elsewhere.json"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    with caplog.at_level(logging.WARNING):
        assert load(path, cache).spec.name == "churn"
    assert "is a symbolic link" in caplog.text
    assert not entry.is_symlink()


def test_a_configured_key_needs_no_key_file(tmp_path: Path) -> None:
    opened = ParseCache.open(tmp_path / "cache", "a deployment secret of some length")
    assert opened is not None and not (tmp_path / "cache.key").exists()


def test_concurrent_processors_never_read_half_an_entry(
    tmp_path: Path, cache: ParseCache, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, definition("churn"))
    spec = load(path, cache).spec
    raw, allowed = path.read_bytes(), _allowed(path)
    seen = []

    def processor() -> None:
        for _ in range(50):
            cache.put(path, raw, cache.recorder({}), allowed, spec)
            seen.append(cache.get(path, raw, {}, allowed))

    threads = [threading.Thread(target=processor) for _ in range(4)]
    with caplog.at_level(logging.WARNING):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert seen == [spec] * 200
    assert caplog.text == ""
    assert not list(cache.folder.glob(".entry-*"))  # no temporary file left behind


def test_the_cache_is_on_under_airflow_home_by_default_and_can_be_turned_off(
    tmp_path: Path,
) -> None:
    home = {"AIRFLOW_HOME": str(tmp_path)}
    assert load_settings(home).parse_cache == tmp_path / "model-steps" / "parse-cache"
    assert load_settings({**home, "MODEL_STEPS_PARSE_CACHE": "off"}).parse_cache is None
    elsewhere = {**home, "AIRFLOW__MODEL_STEPS__PARSE_CACHE": str(tmp_path / "c")}
    assert load_settings(elsewhere).parse_cache == tmp_path / "c"


def _allowed(path: Path) -> AllowList:
    return allow_list_for([path.parent], {})
