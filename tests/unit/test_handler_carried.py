"""Carried columns through a handler: every entrance, batched callers, missing ids refused."""

from __future__ import annotations

import json
import threading

import pandas as pd
import pytest

from model_steps.errors import InvalidInputError
from model_steps.serving.handler import ModelHandler
from tests.lab import FEATURES, make_lab, write_iris


@pytest.fixture(scope="module")
def flowers(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Iris with an id per flower (a string) before the measurements."""
    frame = pd.read_csv(write_iris(tmp_path_factory.mktemp("data")))
    frame.insert(0, "flower_id", [f"F{i:03d}" for i in range(len(frame))])
    return frame


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory, flowers: pd.DataFrame) -> ModelHandler:
    folder = tmp_path_factory.mktemp("carry")
    data = folder / "flowers.csv"
    flowers.to_csv(data, index=False)
    lab = make_lab(folder, data, carry=["flower_id"], predict="predict_proba")
    lab.train()
    served = lab.handler()
    served.load()
    return served


def records(flowers: pd.DataFrame, start: int, count: int) -> list[dict[str, object]]:
    rows = flowers.drop(columns="species").iloc[start : start + count]
    return json.loads(rows.to_json(orient="records"))


def test_records_a_frame_and_a_json_body_get_their_ids_back_in_order(
    handler: ModelHandler, flowers: pd.DataFrame
) -> None:
    sent = records(flowers, 48, 4)
    ids = [record["flower_id"] for record in sent]
    by_records = handler.predict(sent).values()
    by_frame = handler.predict(pd.DataFrame(sent)).frame
    by_json = handler.predict_json(json.dumps(sent).encode()).values()
    assert [row["flower_id"] for row in by_records] == ids
    assert list(by_frame["flower_id"]) == ids
    assert by_json == by_records
    assert list(by_frame.columns) == [
        "flower_id",
        "prediction",
        "setosa",
        "versicolor",
        "virginica",
    ]


def test_concurrent_callers_sharing_a_batch_each_get_their_own_ids(
    handler: ModelHandler, flowers: pd.DataFrame
) -> None:
    answers: dict[int, list[object]] = {}

    def call(caller: int) -> None:
        sent = records(flowers, caller * 3, 3)
        answers[caller] = [row["flower_id"] for row in handler.predict(sent).values()]

    threads = [threading.Thread(target=call, args=(caller,)) for caller in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {
        caller: [f"F{i:03d}" for i in range(caller * 3, caller * 3 + 3)] for caller in range(12)
    }


@pytest.mark.parametrize("entrance", ["records", "json"])
def test_a_record_without_its_id_is_refused_naming_it(
    handler: ModelHandler, flowers: pd.DataFrame, entrance: str
) -> None:
    sent = records(flowers, 0, 2)
    del sent[1]["flower_id"]
    with pytest.raises(InvalidInputError, match=r"'flower_id'.*carries flower_id"):
        if entrance == "json":
            handler.predict_json(json.dumps(sent).encode())
        else:
            handler.predict(sent)


def test_a_frame_without_the_id_column_is_refused(
    handler: ModelHandler, flowers: pd.DataFrame
) -> None:
    with pytest.raises(InvalidInputError, match=r"missing column\(s\) 'flower_id'"):
        handler.predict(flowers[FEATURES].head(2))
