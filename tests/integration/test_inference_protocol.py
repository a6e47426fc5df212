"""``model-steps serve`` speaks the Open Inference Protocol (v2) to clients no one here wrote.

A real server process on loopback serves two models of a real store: ``blooms`` (a label, with a
carried ``flower_id``) and ``petals`` (class probabilities). Triton's own HTTP client
(``tritonclient.http``) and a raw request shaped as MLServer's pandas codec sends a table talk to
it; every answer is compared with what ``/predict`` answers for the same records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.integration.test_serve import POLL, RELOAD_SECONDS, Server, serving, wait_ready
from tests.lab import FEATURES, Lab, make_lab, wait_for

pytestmark = pytest.mark.integration

ROWS = 12


@pytest.fixture(scope="module")
def flowers_with_ids(example_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Iris with a ``flower_id`` column the model carries to its answers."""
    frame = pd.read_csv(example_data / "iris" / "train.csv")
    frame.insert(0, "flower_id", [f"flower-{i}" for i in range(len(frame))])
    path = tmp_path_factory.mktemp("v2-data") / "flowers.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def v2_folder(
    flowers_with_ids: Path, example_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("v2-dags")
    make_lab(folder, flowers_with_ids, name="blooms", carry=["flower_id"]).train()
    iris = example_data / "iris" / "train.csv"
    make_lab(folder, iris, name="petals", predict="predict_proba").train()
    return folder


@pytest.fixture(scope="module")
def blooms_lab(v2_folder: Path, flowers_with_ids: Path) -> Lab:
    """The ``blooms`` model again, to publish versions while the server runs."""
    return make_lab(v2_folder, flowers_with_ids, name="blooms", carry=["flower_id"])


@pytest.fixture(scope="module")
def server(v2_folder: Path) -> Iterator[Server]:
    """``model-steps serve blooms petals`` with small limits."""
    with serving(
        "blooms",
        "petals",
        "--poll-interval",
        POLL,
        "--max-body-bytes",
        "40000",
        "--max-rows",
        "100",
        log=v2_folder / "server.log",
        environ={"MODEL_STEPS_DAGS_FOLDER": str(v2_folder)},
    ) as running:
        wait_ready(running)
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(url=f"127.0.0.1:{server.port}") as connected:
        yield connected


@pytest.fixture(scope="module")
def rows(flowers_with_ids: Path) -> pd.DataFrame:
    return pd.read_csv(flowers_with_ids).drop(columns="species").sample(ROWS, random_state=7)


def predict(server: Server, model: str, rows: pd.DataFrame) -> dict[str, Any]:
    """What ``/predict`` answers for these rows."""
    with server.client() as http:
        response = http.post(f"/models/{model}/predict", json=rows.to_dict(orient="records"))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def column_input(name: str, values: Any, binary: bool = True) -> triton.InferInput:
    """One column as a ``[N, 1]`` input, numbers as FP64 and text as BYTES."""
    array = np.asarray(values).reshape(-1, 1)
    text = array.dtype.kind in "OU"
    array = array.astype(object if text else np.float64)
    tensor = triton.InferInput(name, list(array.shape), "BYTES" if text else "FP64")
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def per_column(rows: pd.DataFrame, binary: bool = True) -> list[triton.InferInput]:
    return [column_input(name, rows[name].to_numpy(), binary) for name in rows.columns]


def as_records(result: Any, names: list[str]) -> list[dict[str, Any]]:
    """Output tensors back as /predict's records (BYTES arrive as bytes)."""
    columns = {}
    for name in names:
        values = result.as_numpy(name)
        columns[name] = [_plain(value) for value in values]
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def blooms_records(result: Any) -> list[dict[str, Any]]:
    """A ``blooms`` answer as /predict's records: the carried id and the label."""
    return as_records(result, ["flower_id", "prediction"])


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else value.item()


# -- health and metadata ------------------------------------------------------------------------


def test_the_server_is_live_and_ready(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()


def test_each_model_is_ready_at_the_version_it_serves(
    client: triton.InferenceServerClient, v2_folder: Path
) -> None:
    assert client.is_model_ready("petals")
    assert client.is_model_ready("petals", "1")
    assert not client.is_model_ready("petals", "9")


def test_the_server_metadata_names_the_binary_extension(
    client: triton.InferenceServerClient,
) -> None:
    metadata = client.get_server_metadata()
    assert metadata["name"] == "model-steps"
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata_lists_one_input_per_column_and_the_outputs(
    client: triton.InferenceServerClient,
) -> None:
    metadata = client.get_model_metadata("blooms")
    assert (metadata["name"], metadata["versions"]) == ("blooms", ["1"])
    assert metadata["inputs"] == [
        *({"name": name, "datatype": "FP64", "shape": [-1, 1]} for name in FEATURES),
        {"name": "flower_id", "datatype": "BYTES", "shape": [-1, 1]},
    ]
    assert metadata["outputs"] == [
        {"name": "flower_id", "datatype": "BYTES", "shape": [-1]},
        {"name": "prediction", "datatype": "BYTES", "shape": [-1]},
    ]


def test_probability_outputs_are_named_by_class(client: triton.InferenceServerClient) -> None:
    outputs = client.get_model_metadata("petals")["outputs"]
    assert [(o["name"], o["datatype"]) for o in outputs] == [
        ("prediction", "BYTES"),
        ("setosa", "FP64"),
        ("versicolor", "FP64"),
        ("virginica", "FP64"),
    ]


# -- inference ---------------------------------------------------------------------------------


def test_one_input_per_column_in_binary_answers_as_predict_does(
    client: triton.InferenceServerClient, server: Server, rows: pd.DataFrame
) -> None:
    result = client.infer("blooms", per_column(rows))
    assert blooms_records(result) == predict(server, "blooms", rows)["predictions"]
    assert result.get_response()["model_version"] == "1"


def test_one_input_per_column_as_json_answers_as_predict_does(
    client: triton.InferenceServerClient, server: Server, rows: pd.DataFrame
) -> None:
    outputs = [
        triton.InferRequestedOutput(n, binary_data=False) for n in ("flower_id", "prediction")
    ]
    result = client.infer("blooms", per_column(rows, binary=False), outputs=outputs)
    assert blooms_records(result) == predict(server, "blooms", rows)["predictions"]


def test_one_matrix_of_the_columns_in_order_answers_as_predict_does(
    client: triton.InferenceServerClient, server: Server, rows: pd.DataFrame
) -> None:
    matrix = triton.InferInput("features", [ROWS, len(FEATURES)], "FP64")
    matrix.set_data_from_numpy(rows[FEATURES].to_numpy(np.float64))
    inputs = [matrix, column_input("flower_id", rows["flower_id"].to_numpy())]
    result = client.infer("blooms", inputs)
    assert blooms_records(result) == predict(server, "blooms", rows)["predictions"]


def test_class_probabilities_come_back_as_one_tensor_per_class(
    client: triton.InferenceServerClient, server: Server, rows: pd.DataFrame
) -> None:
    features = rows[FEATURES]
    names = ["prediction", "setosa", "versicolor", "virginica"]
    result = client.infer("petals", per_column(features))
    assert as_records(result, names) == predict(server, "petals", features)["predictions"]
    assert result.as_numpy("setosa").dtype == np.float64


def test_a_request_shaped_as_mlservers_pandas_codec_answers_as_predict_does(
    server: Server, rows: pd.DataFrame
) -> None:
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            *(
                {"name": n, "shape": [ROWS, 1], "datatype": "FP64", "data": rows[n].tolist()}
                for n in FEATURES
            ),
            {
                "name": "flower_id",
                "shape": [ROWS, 1],
                "datatype": "BYTES",
                "parameters": {"content_type": "str"},
                "data": rows["flower_id"].tolist(),
            },
        ],
    }
    with server.client() as http:
        response = http.post("/v2/models/blooms/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["prediction"]["shape"] == [ROWS]
    records = [
        {"flower_id": i, "prediction": p}
        for i, p in zip(outputs["flower_id"]["data"], outputs["prediction"]["data"], strict=True)
    ]
    assert records == predict(server, "blooms", rows)["predictions"]


def test_the_request_id_comes_back_with_the_answer(
    client: triton.InferenceServerClient, rows: pd.DataFrame
) -> None:
    result = client.infer("blooms", per_column(rows.head(1)), request_id="req-42")
    assert result.get_response()["id"] == "req-42"


def test_asking_for_one_output_answers_only_that_one(
    client: triton.InferenceServerClient, rows: pd.DataFrame
) -> None:
    outputs = [triton.InferRequestedOutput("prediction")]
    result = client.infer("blooms", per_column(rows), outputs=outputs)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["prediction"]


# -- errors ------------------------------------------------------------------------------------


def v2_post(server: Server, path: str, body: Any) -> httpx.Response:
    with server.client() as http:
        return http.post(path, content=json.dumps(body))


def flower_inputs(**changes: Any) -> dict[str, Any]:
    data = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    data.update(changes)
    return {
        "inputs": [
            {
                "name": n,
                "shape": [1],
                "datatype": "BYTES" if isinstance(v, str) else "FP64",
                "data": [v],
            }
            for n, v in data.items()
        ]
    }


def test_an_unknown_model_is_404_with_an_error(client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="no model 'tulips' is served here"):
        client.get_model_metadata("tulips")


def test_a_version_not_served_here_is_404(server: Server) -> None:
    response = v2_post(server, "/v2/models/petals/versions/7/infer", flower_inputs())
    assert response.status_code == 404
    assert "version '7' of petals is not served here" in response.json()["error"]


def test_a_missing_column_is_400_naming_it(server: Server) -> None:
    body = flower_inputs()
    body["inputs"] = body["inputs"][:3]
    response = v2_post(server, "/v2/models/petals/infer", body)
    assert response.status_code == 400
    assert "missing column(s) 'petal_width'" in response.json()["error"]


def test_text_in_a_number_column_is_400_as_in_predict(server: Server) -> None:
    response = v2_post(server, "/v2/models/petals/infer", flower_inputs(petal_width="0.2"))
    assert response.status_code == 400
    assert "column 'petal_width' takes numbers" in response.json()["error"]


def test_a_boolean_in_number_data_is_400(server: Server) -> None:
    response = v2_post(server, "/v2/models/petals/infer", flower_inputs(petal_width=True))
    assert response.status_code == 400
    assert "FP64 data takes numbers; element 0 is a boolean" in response.json()["error"]


def test_data_that_does_not_fill_its_shape_is_400(server: Server) -> None:
    body = flower_inputs()
    body["inputs"][0]["shape"] = [2]
    response = v2_post(server, "/v2/models/petals/infer", body)
    assert response.status_code == 400
    assert "its shape holds 2 elements, its data 1" in response.json()["error"]


def test_an_unknown_input_is_400_saying_what_is_expected(server: Server) -> None:
    body = flower_inputs()
    body["inputs"][0]["name"] = "sepal"
    response = v2_post(server, "/v2/models/petals/infer", body)
    assert response.status_code == 400
    assert "one input per column" in response.json()["error"]


def test_more_rows_than_the_limit_are_413(server: Server) -> None:
    body = {
        "inputs": [{"name": "features", "shape": [101, 4], "datatype": "FP64", "data": [0.0] * 404}]
    }
    response = v2_post(server, "/v2/models/petals/infer", body)
    assert response.status_code == 413
    assert "over this server's limit of 100" in response.json()["error"]


def test_a_body_over_the_limit_is_413(server: Server) -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a" * 50_000]}]}
    response = v2_post(server, "/v2/models/petals/infer", body)
    assert response.status_code == 413
    assert "limit of 40000 bytes" in response.json()["error"]


def test_binary_data_shorter_than_declared_is_400(server: Server) -> None:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "features",
                    "shape": [1, 4],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 32},
                }
            ]
        }
    ).encode()
    with server.client() as http:
        response = http.post(
            "/v2/models/petals/infer",
            content=header + b"\0" * 16,
            headers={"Inference-Header-Content-Length": str(len(header))},
        )
    assert response.status_code == 400
    assert "binary_data_size 32 is more than the 16 bytes" in response.json()["error"]


# -- versions: hot reload and pins ---------------------------------------------------------------


def test_a_new_version_is_served_over_v2_once_published(
    client: triton.InferenceServerClient, server: Server, blooms_lab: Lab, rows: pd.DataFrame
) -> None:
    version = blooms_lab.train(C=0.05)
    wait_for(lambda: client.is_model_ready("blooms", str(version)), RELOAD_SECONDS)
    result = client.infer("blooms", per_column(rows), model_version=str(version))
    assert result.get_response()["model_version"] == str(version)
    assert blooms_records(result) == predict(server, "blooms", rows)["predictions"]
    assert not client.is_model_ready("blooms", "1")


def test_a_pinned_server_answers_for_its_pinned_version(
    v2_folder: Path, blooms_lab: Lab, rows: pd.DataFrame
) -> None:
    blooms_lab.train()  # the live version moves on; the pin stays at 1
    with serving(
        "blooms",
        "--pin",
        "1",
        log=v2_folder / "pinned.log",
        environ={"MODEL_STEPS_DAGS_FOLDER": str(v2_folder)},
    ) as pinned:
        wait_ready(pinned)
        with triton.InferenceServerClient(url=f"127.0.0.1:{pinned.port}") as client:
            assert client.get_model_metadata("blooms")["versions"] == ["1"]
            result = client.infer("blooms", per_column(rows), model_version="1")
            assert result.get_response()["model_version"] == "1"
