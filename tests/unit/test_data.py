"""Reading and writing tables through fsspec, and the frames tasks hand each other."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from model_steps.errors import PermanentError
from model_steps.runtime.tables import frame_from_bytes, frame_to_bytes, read_table, write_table

TABLE = pd.DataFrame({"height": [1.5, 2.0, 3.25], "count": [1, 2, 3], "name": ["a", "b", "c"]})


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_each_format_round_trips_through_fsspec(fmt: str, tmp_path: Path) -> None:
    url = f"memory://{tmp_path.name}/table.{fmt}"
    write_table(TABLE, url, fmt)
    assert_frame_equal(read_table(url, fmt), TABLE)


def test_write_creates_local_folders_and_returns_the_file_size(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "table.csv"
    size = write_table(TABLE, str(path), "csv")
    assert size == path.stat().st_size
    assert path.read_text().splitlines()[0] == "height,count,name"


def test_options_reach_the_pandas_reader_and_writer(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/table.csv"
    write_table(TABLE, url, "csv", options={"sep": ";"})
    assert (tmp_path / "table.csv").read_text().startswith("height;count;name")
    assert_frame_equal(read_table(url, "csv", options={"sep": ";"}), TABLE)


def test_missing_table_error_names_the_url() -> None:
    with pytest.raises(FileNotFoundError, match=r"memory://nowhere/train\.csv"):
        read_table("memory://nowhere/train.csv", "csv")


def test_unknown_format_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="csv, parquet, json"):
        read_table("memory://x/table.xlsx", "xlsx")


def test_frame_bytes_keep_dtypes_columns_and_index() -> None:
    features = TABLE.assign(kind=pd.Categorical(["x", "y", "x"])).set_index(pd.Index([7, 3, 5]))
    label = pd.Series([0, 1, 0], index=features.index, name="label")
    frame = features.assign(label=label)
    restored = frame_from_bytes(frame_to_bytes(frame))
    assert_frame_equal(restored, frame)
