"""What a skops file may make its loader build: names are judged by what they resolve to."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from model_steps.definition.schema import Step
from model_steps.errors import UntrustedTypeError
from model_steps.runtime.serializers import load_fitted, serializer_for
from model_steps.settings import AllowList
from tests.assets import touching_pickle
from tests.conftest import REPO

OWN_CODE = AllowList(code_folders=(REPO,), code_modules=("tests",))
"""The repository stands in for the DAGs folder: ``tests.step_code`` is its own code."""
SKOPS = Step.model_validate(
    {
        "id": "m",
        "has_assets": True,
        "assets_identifier": "m.skops",
        "parameters": {"package": "sklearn.preprocessing", "class": "StandardScaler"},
    }
)
X = np.random.default_rng(0).random((60, 3))
Y = (X[:, 0] > 0.5).astype(int)


def forged_call(module: str, function: str, *args: Any) -> bytes:
    """A real skops file edited so that loading it calls ``module.function(*args)``.

    skops writes the arguments' tuple; its schema is then wrapped in the node skops loads by
    calling the type it names with them (``ConstructorFromReduceNode``).
    """
    archive = zipfile.ZipFile(io.BytesIO(sio.dumps(tuple(args))))
    arguments = json.loads(archive.read("schema.json"))
    schema = {
        "__class__": function,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {k: v for k, v in arguments.items() if k.startswith("__") or k == "content"},
        "__id__": 1,
        "protocol": arguments["protocol"],
        "_skops_version": arguments["_skops_version"],
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as forged:
        for name in archive.namelist():
            body = archive.read(name)
            forged.writestr(name, json.dumps(schema) if name == "schema.json" else body)
    return out.getvalue()


def payloads(marker: Path) -> dict[str, bytes]:
    """Each way of running code that a forged file tries; each would create ``marker``."""
    pickled = marker.with_suffix(".npy")
    pickled.write_bytes(touching_pickle(marker))
    python = f"open({str(marker)!r}, 'w').close()"
    return {
        "forged module path": forged_call(
            "sklearn.utils._testing", "check_output", ["touch", str(marker)]
        ),
        "builtins.eval": forged_call("builtins", "eval", python),
        "os.system": forged_call("os", "system", f"touch {marker}"),
        "numpy.load": forged_call("numpy", "load", str(pickled), None, True),
        "a module reached through own code": forged_call("tests.step_code", "json", "ignored"),
    }


PAYLOADS = [
    "forged module path",
    "builtins.eval",
    "os.system",
    "numpy.load",
    "a module reached through own code",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_forged_skops_file_is_refused_and_runs_nothing(payload: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    data = payloads(marker)[payload]
    with pytest.raises(UntrustedTypeError, match="nothing of it was loaded"):
        load_fitted(io.BytesIO(data), SKOPS, OWN_CODE)
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["forged module path", "os.system", "numpy.load"])
def test_the_forged_files_do_run_code_when_their_names_are_trusted(
    payload: str, tmp_path: Path
) -> None:
    """The payloads are live: a loader that trusted the file's names would run them."""
    marker = tmp_path / "ran"
    data = payloads(marker)[payload]
    sio.load(io.BytesIO(data), trusted=sio.get_untrusted_types(data=data))
    assert marker.exists()


def test_the_refusal_says_what_the_forged_name_really_is(tmp_path: Path) -> None:
    data = payloads(tmp_path / "ran")["forged module path"]
    with pytest.raises(UntrustedTypeError) as refused:
        load_fitted(io.BytesIO(data), SKOPS, OWN_CODE)
    assert refused.value.types == ("sklearn.utils._testing.check_output",)
    assert "'_testing' is test code" in str(refused.value)


def test_a_library_function_behind_a_model_is_refused() -> None:
    """A FunctionTransformer holding ``numpy.load`` never loads, though numpy is a data package."""
    data = sio.dumps(FunctionTransformer(np.load))
    with pytest.raises(UntrustedTypeError, match=r"numpy\.load \(it is the function"):
        load_fitted(io.BytesIO(data), SKOPS, OWN_CODE)


def test_a_function_of_the_deployments_own_code_loads() -> None:
    from tests.step_code import scale_by

    data = sio.dumps(FunctionTransformer(scale_by, kw_args={"factor": 2.0}))
    loaded = load_fitted(io.BytesIO(data), SKOPS, OWN_CODE)
    np.testing.assert_allclose(loaded.transform(X), X * 2.0)


def test_a_listed_library_function_loads() -> None:
    data = sio.dumps(FunctionTransformer(np.load))
    allow = AllowList(functions=("numpy:load",))
    assert load_fitted(io.BytesIO(data), SKOPS, allow).func is np.load


@pytest.mark.parametrize(
    "model",
    [
        make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=3, random_state=0)),
        HistGradientBoostingClassifier(max_iter=3),
    ],
    ids=["forest", "hist_gradient_boosting"],
)
def test_models_whose_parts_live_in_private_modules_still_load(model: Any) -> None:
    """A forest's trees (``sklearn.tree._tree.Tree``) are model parts, not refused names."""
    model.fit(X, Y)
    data = serializer_for(SKOPS, OWN_CODE).save(model)
    loaded = load_fitted(io.BytesIO(data), SKOPS, OWN_CODE)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_module_outside_the_allowed_packages_is_never_imported() -> None:
    data = forged_call("model_steps_never_imported_module", "Thing")
    with pytest.raises(UntrustedTypeError, match="is not an allowed import"):
        load_fitted(io.BytesIO(data), SKOPS, OWN_CODE)
    assert "model_steps_never_imported_module" not in sys.modules
