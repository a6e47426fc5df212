"""The parse cache and DAG bundles: an entry holds only with the own code it was made with."""

from __future__ import annotations

import shutil
from pathlib import Path

from model_steps.definition.cache import ParseCache
from model_steps.definition.loader import load_and_validate
from tests.conftest import EXAMPLES


def names(folder: Path, cache: ParseCache) -> list[str]:
    return [model.spec.name for model in load_and_validate([folder], {}, cache=cache).models]


def test_a_cached_definition_is_checked_again_when_its_bundle_loses_its_code(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(EXAMPLES, bundle)
    cache = ParseCache.open(tmp_path / "cache")
    assert cache is not None
    assert "diabetes" in names(bundle, cache)
    shutil.rmtree(bundle / "model_code")
    assert "diabetes" not in names(bundle, cache)


def test_two_bundles_with_the_same_definition_each_use_their_own_code(tmp_path: Path) -> None:
    cache = ParseCache.open(tmp_path / "cache")
    assert cache is not None
    with_code, without = tmp_path / "with-code", tmp_path / "without"
    shutil.copytree(EXAMPLES, with_code)
    shutil.copytree(EXAMPLES, without, ignore=shutil.ignore_patterns("model_code"))
    assert "diabetes" in names(with_code, cache)
    assert "diabetes" not in names(without, cache)
