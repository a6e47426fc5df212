"""Reading and writing tables through fsspec, and the frames tasks hand each other."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from model_steps.definition.data_locations import DataPlaces, data_places
from model_steps.errors import PermanentError, UnsafeUrlError
from model_steps.runtime.tables import frame_from_bytes, frame_to_bytes, read_table, write_table

TABLE = pd.DataFrame({"height": [1.5, 2.0, 3.25], "count": [1, 2, 3], "name": ["a", "b", "c"]})


@pytest.fixture
def places(tmp_path: Path) -> DataPlaces:
    """A deployment that allows data in memory and under the test's folder."""
    return data_places({"MODEL_STEPS_ALLOWED_DATA": f"memory://, {tmp_path}/"}, [])


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_each_format_round_trips_through_fsspec(
    fmt: str, tmp_path: Path, places: DataPlaces
) -> None:
    url = f"memory://{tmp_path.name}/table.{fmt}"
    write_table(TABLE, url, fmt, places=places)
    assert_frame_equal(read_table(url, fmt, places=places), TABLE)


def test_write_creates_local_folders_and_returns_the_file_size(
    tmp_path: Path, places: DataPlaces
) -> None:
    path = tmp_path / "a" / "b" / "table.csv"
    size = write_table(TABLE, str(path), "csv", places=places)
    assert size == path.stat().st_size
    assert path.read_text().splitlines()[0] == "height,count,name"


def test_options_reach_the_pandas_reader_and_writer(tmp_path: Path, places: DataPlaces) -> None:
    url = f"file://{tmp_path}/table.csv"
    write_table(TABLE, url, "csv", places=places, options={"sep": ";"})
    assert (tmp_path / "table.csv").read_text().startswith("height;count;name")
    assert_frame_equal(read_table(url, "csv", places=places, options={"sep": ";"}), TABLE)


def test_missing_table_error_names_the_url(places: DataPlaces) -> None:
    with pytest.raises(FileNotFoundError, match=r"memory://nowhere/train\.csv"):
        read_table("memory://nowhere/train.csv", "csv", places=places)


def test_unknown_format_is_a_permanent_error(places: DataPlaces) -> None:
    with pytest.raises(PermanentError, match="csv, parquet, json"):
        read_table("memory://x/table.xlsx", "xlsx", places=places)


@pytest.mark.parametrize(
    "url",
    ["/proc/self/environ", "http://169.254.169.254/latest/meta-data/x.csv", "file://etc/x.csv"],
)
def test_a_table_outside_the_allowed_places_is_never_opened(url: str, places: DataPlaces) -> None:
    with pytest.raises(UnsafeUrlError, match="MODEL_STEPS_ALLOWED_DATA"):
        read_table(url, "csv", places=places)


def test_a_table_is_never_written_outside_the_allowed_places(
    tmp_path: Path, places: DataPlaces
) -> None:
    sibling = tmp_path.parent / f"{tmp_path.name}-other" / "x.csv"
    with pytest.raises(UnsafeUrlError, match="outside the allowed data locations"):
        write_table(TABLE, str(sibling), "csv", places=places)
    assert not sibling.parent.exists()


@pytest.mark.parametrize(
    "option", [{"storage_options": {}}, {"engine": "python"}, {"compression": {"method": "zip"}}]
)
def test_an_option_tables_do_not_accept_is_refused_before_reading(
    tmp_path: Path, places: DataPlaces, option: dict[str, object]
) -> None:
    url = str(tmp_path / "table.csv")
    write_table(TABLE, url, "csv", places=places)
    with pytest.raises(PermanentError, match=f"option '{next(iter(option))}'"):
        read_table(url, "csv", places=places, options=option)


def test_frame_bytes_keep_dtypes_columns_and_index() -> None:
    features = TABLE.assign(kind=pd.Categorical(["x", "y", "x"])).set_index(pd.Index([7, 3, 5]))
    label = pd.Series([0, 1, 0], index=features.index, name="label")
    frame = features.assign(label=label)
    restored = frame_from_bytes(frame_to_bytes(frame))
    assert_frame_equal(restored, frame)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_reading_named_columns_returns_only_them(
    fmt: str, tmp_path: Path, places: DataPlaces
) -> None:
    url = f"memory://{tmp_path.name}/narrow.{fmt}"
    write_table(TABLE, url, fmt, places=places)
    frame = read_table(url, fmt, places=places, columns=["count", "height"])
    assert sorted(frame.columns) == ["count", "height"]


def test_training_reads_only_its_features_target_and_carried_columns() -> None:
    from model_steps.definition.schema import Step
    from model_steps.runtime.train import training_columns

    step = Step.model_validate(
        {
            "id": "fit",
            "parameters": {
                "package": "sklearn.linear_model",
                "class": "LogisticRegression",
                "carry": ["id"],
                "training": {"target": "label", "features": ["a", "b"]},
            },
        }
    )
    assert training_columns(step) == ["a", "b", "label", "id"]
