"""A folder spread over shards: each definition built by one shard, the rules across files kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_steps.definition.cache import ParseCache
from model_steps.definition.loader import Catalog, load_and_validate
from model_steps.definition.shards import Shard, shard_count, shard_of
from model_steps.settings import load_settings
from tests.definitions import definition

NAMES = [f"model_{i:03d}" for i in range(40)]


@pytest.fixture
def cache(tmp_path: Path) -> ParseCache:
    opened = ParseCache.open(tmp_path / "cache")
    assert opened is not None
    return opened


def folder_of(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}.yaml").write_text(definition(name))
    return folder


def load_shard(
    folder: Path, index: int, count: int, cache: ParseCache, environ: dict[str, str] | None = None
) -> Catalog:
    shard = Shard(folder, count, frozenset({index}))
    return load_and_validate([folder], environ or {}, cache=cache, shard=shard, check_data=False)


def apart(name: str) -> tuple[str, int]:
    """A model built by another shard than ``name``'s, and ``name``'s shard (of three)."""
    shard = shard_of(f"{name}.yaml", 3)
    return next(n for n in NAMES if shard_of(f"{n}.yaml", 3) != shard), shard


def names(catalog: Catalog) -> set[str]:
    return {m.spec.name for m in catalog.models}


def test_adding_a_definition_moves_no_other_definition(tmp_path: Path, cache: ParseCache) -> None:
    folder = folder_of(tmp_path, NAMES)
    before = [names(load_shard(folder, i, 3, cache)) for i in range(3)]
    (folder / "newcomer.yaml").write_text(definition("newcomer"))
    after = [names(load_shard(folder, i, 3, cache)) for i in range(3)]
    assert [part - {"newcomer"} for part in after] == before


def test_one_more_shard_only_takes_definitions_never_swaps_them() -> None:
    paths = [f"team/model_{i}.yaml" for i in range(2000)]
    moved = [p for p in paths if shard_of(p, 10) != shard_of(p, 11)]
    assert all(shard_of(p, 11) == 10 for p in moved)
    assert 100 < len(moved) < 300  # about one in eleven


def test_shards_share_a_folder_evenly() -> None:
    sizes = [0] * 8
    for i in range(8000):
        sizes[shard_of(f"m{i}.yaml", 8)] += 1
    assert min(sizes) > 850 and max(sizes) < 1150


def test_shard_count_keeps_each_file_within_the_setting() -> None:
    assert shard_count(0, 200) == 1
    assert shard_count(200, 200) == 1
    assert shard_count(201, 200) == 2
    assert shard_count(10_000, 200) == 50
    assert shard_count(10_000, 0) == 1  # 0 turns sharding off


def test_every_definition_is_built_by_exactly_one_shard(tmp_path: Path, cache: ParseCache) -> None:
    folder = folder_of(tmp_path, NAMES)
    parts = [names(load_shard(folder, i, 3, cache)) for i in range(3)]
    assert sorted(n for part in parts for n in part) == NAMES
    assert all(parts)


def test_a_shard_reports_only_its_own_broken_files(tmp_path: Path, cache: ParseCache) -> None:
    folder = folder_of(tmp_path, NAMES)
    (folder / "broken.yaml").write_text(definition("broken", "shedule: {}\n"))
    owner = shard_of("broken.yaml", 3)
    for index in range(3):
        broken = load_shard(folder, index, 3, cache).broken
        assert [b.path.name for b in broken] == (["broken.yaml"] if index == owner else [])


def test_a_name_taken_in_another_shard_is_reported_in_the_copy_s_shard(
    tmp_path: Path, cache: ParseCache
) -> None:
    folder = folder_of(tmp_path, NAMES)
    copy = next(f"copy_{i}" for i in range(100) if shard_of(f"copy_{i}.yaml", 3) != 0)
    original = next(n for n in NAMES if shard_of(f"{n}.yaml", 3) != shard_of(f"{copy}.yaml", 3))
    (folder / f"{copy}.yaml").write_text(definition(original))
    for index in range(3):
        load_shard(folder, index, 3, cache)  # every shard parsed once: the index is full
    copy_shard = load_and_validate(
        [folder],
        {},
        cache=cache,
        shard=Shard(folder, 3, frozenset({shard_of(f"{copy}.yaml", 3)})),
    )
    (problem,) = next(b for b in copy_shard.broken if b.path.name == f"{copy}.yaml").problems
    assert problem.code == "duplicate_model"
    assert f"{original}.yaml" in problem.message
    assert original in names(load_shard(folder, shard_of(f"{original}.yaml", 3), 3, cache))


def test_a_store_shared_across_shards_breaks_both_models(tmp_path: Path, cache: ParseCache) -> None:
    folder = folder_of(tmp_path, NAMES)
    first = NAMES[0]
    second = next(n for n in NAMES if shard_of(f"{n}.yaml", 3) != shard_of(f"{first}.yaml", 3))
    for name in (first, second):
        (folder / f"{name}.yaml").write_text(
            definition(name, "assets:\n  root: s3://models\n  directory: shared\n")
        )
    for name in (first, second):
        catalog = load_shard(folder, shard_of(f"{name}.yaml", 3), 3, cache)
        (broken,) = [b for b in catalog.broken if b.name == name]
        assert broken.problems[0].code == "shared_store"
        other = second if name == first else first
        assert f"model {other!r}" in broken.problems[0].message


def test_data_inside_another_shard_s_store_is_refused(tmp_path: Path, cache: ParseCache) -> None:
    folder = folder_of(tmp_path, NAMES)
    owner = NAMES[0]
    (folder / f"{owner}.yaml").write_text(
        definition(owner, "assets:\n  root: s3://data\n  directory: kept\n")
    )
    reader = next(n for n in NAMES if shard_of(f"{n}.yaml", 3) != shard_of(f"{owner}.yaml", 3))
    (folder / f"{reader}.yaml").write_text(
        definition(reader).replace("s3://data/train.csv", "s3://data/kept/versions/1/x.csv")
    )
    environ = {"MODEL_STEPS_ALLOWED_DATA": "s3://data/"}
    catalog = load_and_validate(
        [folder],
        environ,
        cache=cache,
        check_data=True,
        shard=Shard(folder, 3, frozenset({shard_of(f"{reader}.yaml", 3)})),
    )
    (broken,) = [b for b in catalog.broken if b.name == reader]
    assert f"the store of model {owner!r}" in broken.problems[0].message


def test_an_edit_in_another_shard_is_seen_at_the_next_parse(
    tmp_path: Path, cache: ParseCache
) -> None:
    folder, mine = folder_of(tmp_path, NAMES), NAMES[0]
    other, index = apart(mine)
    assert mine in names(load_shard(folder, index, 3, cache))
    (folder / f"{other}.yaml").write_text(definition(other, f"assets:\n  directory: {mine}\n"))
    catalog = load_shard(folder, index, 3, cache)
    assert mine not in names(catalog)
    assert [b.problems[0].code for b in catalog.broken if b.name == mine] == ["shared_store"]


def test_an_environment_change_reaches_another_shard_s_claims(
    tmp_path: Path, cache: ParseCache
) -> None:
    folder, mine = folder_of(tmp_path, NAMES), NAMES[0]
    other, index = apart(mine)
    (folder / f"{mine}.yaml").write_text(
        definition(mine, "assets:\n  root: s3://models\n  directory: mine\n")
    )
    (folder / f"{other}.yaml").write_text(
        definition(other, "assets:\n  root: s3://models\n  directory: ${OTHER_DIR}\n")
    )
    environ = {"OTHER_DIR": "theirs", "MODEL_STEPS_ALLOWED_ENV": "OTHER_DIR"}
    assert mine in names(load_shard(folder, index, 3, cache, environ))
    environ["OTHER_DIR"] = "mine"
    catalog = load_shard(folder, index, 3, cache, environ)
    assert mine not in names(catalog)
    assert [b.problems[0].code for b in catalog.broken if b.name == mine] == ["shared_store"]


def test_a_forged_folder_index_is_ignored(tmp_path: Path, cache: ParseCache) -> None:
    folder = folder_of(tmp_path, NAMES)
    mine = next(n for n in NAMES if shard_of(f"{n}.yaml", 3) == 0)
    other = next(n for n in NAMES if shard_of(f"{n}.yaml", 3) != 0)
    load_shard(folder, 0, 3, cache)
    (index_file,) = cache.folder.glob("folder-index-*.json")
    mac, _, body = index_file.read_bytes().partition(b"\n")
    forged = body.replace(f'/{other}"]'.encode(), f'/{mine}"]'.encode())
    assert forged != body
    index_file.write_bytes(mac + b"\n" + forged)  # another model's claim moved onto my store
    assert mine in names(load_shard(folder, 0, 3, cache))


def test_shard_size_and_airflows_limits_are_read_as_airflow_reads_them(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text(
        "[model_steps]\nmodels_per_shard = 120\n"
        "[core]\ndagbag_import_timeout = 45\n"
        "[dag_processor]\ndag_file_processor_timeout = 90\nrefresh_interval = 60\n"
    )
    from_file = load_settings({"AIRFLOW_HOME": str(tmp_path)})
    assert (from_file.models_per_shard, from_file.import_timeout) == (120, 45.0)
    assert (from_file.processor_timeout, from_file.bundle_refresh) == (90.0, 60.0)
    from_env = load_settings(
        {
            "AIRFLOW_HOME": str(tmp_path),
            "MODEL_STEPS_MODELS_PER_SHARD": "0",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "20",
        }
    )
    assert (from_env.models_per_shard, from_env.import_timeout) == (0, 20.0)
    defaults = load_settings({"AIRFLOW_HOME": str(tmp_path / "nowhere")})
    assert (defaults.models_per_shard, defaults.import_timeout) == (200, 30.0)
    assert defaults.parse_watch_interval == 5.0
    assert (defaults.processor_timeout, defaults.bundle_refresh) == (50.0, 300.0)


def test_the_parse_watch_interval_comes_from_either_variable_and_is_never_negative(
    tmp_path: Path,
) -> None:
    home = {"AIRFLOW_HOME": str(tmp_path)}
    assert (
        load_settings({**home, "MODEL_STEPS_PARSE_WATCH_INTERVAL": "0"}).parse_watch_interval == 0
    )
    airflow_form = {**home, "AIRFLOW__MODEL_STEPS__PARSE_WATCH_INTERVAL": "1.5"}
    assert load_settings(airflow_form).parse_watch_interval == 1.5
    negative = {**home, "MODEL_STEPS_PARSE_WATCH_INTERVAL": "-3"}
    assert load_settings(negative).parse_watch_interval == 0


SCALING = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "scaling.md"


def ini_blocks(page: Path) -> list[str]:
    """The ``ini`` snippets of a documentation page, in order."""
    parts = page.read_text().split("```ini\n")[1:]
    return [part.split("```", 1)[0] for part in parts]


def test_the_scaling_page_s_shard_size_snippet_sets_the_shard_size(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text(ini_blocks(SCALING)[0])
    assert load_settings({"AIRFLOW_HOME": str(tmp_path)}).models_per_shard == 100


def test_the_scaling_page_s_timeout_snippet_moves_the_warning_limit(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text(ini_blocks(SCALING)[1])
    settings = load_settings({"AIRFLOW_HOME": str(tmp_path)})
    assert (settings.import_timeout, settings.processor_timeout) == (60.0, 90.0)


def test_the_scaling_page_s_watcher_snippet_looks_every_2_seconds(tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text(ini_blocks(SCALING)[2])
    assert load_settings({"AIRFLOW_HOME": str(tmp_path)}).parse_watch_interval == 2.0


def test_the_scaling_page_s_refresh_snippet_lists_the_folder_every_30_seconds(
    tmp_path: Path,
) -> None:
    (tmp_path / "airflow.cfg").write_text(ini_blocks(SCALING)[3])
    assert load_settings({"AIRFLOW_HOME": str(tmp_path)}).bundle_refresh == 30.0
