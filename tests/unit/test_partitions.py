"""Splitting an input table into partitions and reading each back, a batch at a time."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from model_steps.definition.data_locations import places_under
from model_steps.definition.schema import parse_size
from model_steps.errors import UnsafeUrlError
from model_steps.runtime.partitions import TablePlan, plan_table, read_partition

ROWS = 1000


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"row-{i}" for i in range(ROWS)],
            "x": [i * 0.5 for i in range(ROWS)],
            "y": [i % 7 for i in range(ROWS)],
        }
    )


def write(frame: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False, row_group_size=100)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return str(path)


def plan(url: str, fmt: str, size: int, **kwargs: object) -> TablePlan:
    return plan_table(
        url, fmt, 1, size=size, places=places_under(str(Path(url).parent), "the test"), **kwargs
    )  # type: ignore[arg-type]


def read_all(table_plan: TablePlan, **options: object) -> list[pd.DataFrame]:
    places = places_under(str(Path(table_plan.url).parent), "the test")
    return [
        pd.concat(list(read_partition(table_plan, p, places=places, options=options)))
        for p in table_plan.partitions
    ]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_partitions_read_back_to_the_whole_table_in_order(
    fmt: str, table: pd.DataFrame, tmp_path: Path
) -> None:
    url = write(table, tmp_path / f"table.{'jsonl' if fmt == 'json' else fmt}")
    parts = read_all(plan(url, fmt, size=4000))
    assert len(parts) > 3
    assert pd.concat(parts, ignore_index=True).equals(table)


def test_parquet_partitions_end_at_row_groups_that_fit(table: pd.DataFrame, tmp_path: Path) -> None:
    url = write(table, tmp_path / "table.parquet")  # row groups of 100 rows, ~2 KB decoded each
    table_plan = plan(url, "parquet", size=5000)
    assert all(p.start % 100 == 0 for p in table_plan.partitions)
    assert table_plan.rows == ROWS


def test_a_row_group_larger_than_a_partition_is_cut_inside_it(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": range(ROWS)})
    frame.to_parquet(tmp_path / "one.parquet", row_group_size=ROWS)
    table_plan = plan(str(tmp_path / "one.parquet"), "parquet", size=1000)
    assert len(table_plan.partitions) > 5
    parts = read_all(table_plan)
    assert pd.concat(parts, ignore_index=True).equals(frame)


def test_csv_partitions_each_end_at_a_line_end(table: pd.DataFrame, tmp_path: Path) -> None:
    url = write(table, tmp_path / "table.csv")
    data = Path(url).read_bytes()
    for partition in plan(url, "csv", size=1000).partitions:
        assert data[partition.stop - 1 : partition.stop] == b"\n"


def test_options_that_apply_to_the_whole_file_make_it_one_partition(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    url = write(table, tmp_path / "table.csv")
    table_plan = plan(url, "csv", size=1000, options={"nrows": 10})
    assert [p.unit for p in table_plan.partitions] == ["whole"]
    assert len(read_all(table_plan, nrows=10)[0]) == 10


def test_partitions_grow_to_stay_within_the_limit_airflow_maps(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    url = write(table, tmp_path / "table.csv")
    table_plan = plan(url, "csv", size=10, limit=4)
    assert 1 < len(table_plan.partitions) <= 4
    assert pd.concat(read_all(table_plan), ignore_index=True).equals(table)


def test_a_table_outside_the_allowed_places_is_refused_before_planning(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    url = write(table, tmp_path / "table.csv")
    with pytest.raises(UnsafeUrlError):
        plan_table(
            url, "csv", 1, size=100, places=places_under(str(tmp_path / "elsewhere"), "the test")
        )


@pytest.mark.parametrize(
    ("text", "size"),
    [("256MB", 256_000_000), ("256MiB", 256 * 1024**2), ("1GiB", 1024**3), ("100B", 100), (5, 5)],
)
def test_sizes_read_as_people_write_them(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_a_batch_whose_column_reads_another_type_is_cast_to_the_first_batchs() -> None:
    import pyarrow as pa

    from model_steps.runtime.parts import conform

    first = pa.schema([("quantity", pa.float64())])
    later = pa.table({"quantity": pa.array([1, 2], pa.int64())})
    assert conform(later, first).schema == first


def test_a_batch_that_cannot_take_the_first_batchs_types_says_what_to_set() -> None:
    import pyarrow as pa

    from model_steps.errors import PermanentError
    from model_steps.runtime.parts import conform

    first = pa.schema([("quantity", pa.int64())])
    later = pa.table({"quantity": pa.array(["a lot", None])})
    with pytest.raises(PermanentError, match="dtype"):
        conform(later, first)


@pytest.mark.parametrize("task_id", ["partitions", "output"])
def test_a_step_may_not_take_the_name_of_an_infer_task(task_id: str, tmp_path: Path) -> None:
    from model_steps.definition.loader import load_and_validate

    (tmp_path / "clash.yaml").write_text(
        "apiVersion: model-steps/v1\nkind: Model\nname: clash\nsteps:\n"
        f"  - id: {task_id}\n    parameters: {{package: sklearn.preprocessing, "
        "class: StandardScaler}\n"
    )
    (broken,) = load_and_validate([tmp_path], {}).broken
    assert "reserved_step" in [p.code for p in broken.problems]


def test_an_option_tables_refuse_fails_the_plan_before_any_read(
    table: pd.DataFrame, tmp_path: Path
) -> None:
    from model_steps.errors import PermanentError

    url = write(table, tmp_path / "table.csv")
    with pytest.raises(PermanentError, match="option 'filesystem' is not accepted"):
        plan(url, "csv", size=1000, options={"filesystem": "file"})
