"""LightGBM's parameter text: a definition can neither add a parameter to it nor name a file in it.

LightGBM joins a class's init arguments into one ``key=value key=value`` text for its C library.
The corpus case ``security/imports/lightgbm_parameter_injection`` holds the attacks and what
``validate`` reports for each (``tests/integration/test_refusals.py`` runs each as a task); here
every file parameter, a rendered value and a re-exported class are refused when a step runs,
while plain values still fit.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from model_steps.definition.allowlist import LIGHTGBM_FILES, LIGHTGBM_RISKY
from model_steps.definition.schema import Step
from model_steps.errors import ImportRefusedError
from model_steps.runtime.steps import step_kind
from model_steps.settings import allow_list

ALLOW = allow_list({}, [])


def lightgbm_step(init: dict[str, Any], package: str = "lightgbm") -> Step:
    return Step.model_validate(
        {"id": "boost", "parameters": {"package": package, "class": "LGBMClassifier", "init": init}}
    )


@pytest.mark.parametrize("name", sorted(LIGHTGBM_RISKY))
def test_every_file_and_network_parameter_is_refused_when_the_step_runs(name: str) -> None:
    with pytest.raises(ImportRefusedError, match=f"init argument '{name}' may only be null"):
        step_kind(lightgbm_step({name: "/tmp/planted"}), {name: "/tmp/planted"}, ALLOW, last=True)


def test_the_file_parameters_are_every_alias_the_installed_lightgbm_accepts() -> None:
    from lightgbm.basic import _ConfigAliases

    table = _ConfigAliases._get_all_param_aliases()
    naming_files = {name for name in table if "file" in name or name.endswith("_model")}
    assert naming_files <= set(LIGHTGBM_FILES)
    for canonical in LIGHTGBM_FILES:
        assert set(table[canonical]) <= set(LIGHTGBM_RISKY), canonical


@pytest.mark.parametrize(
    "rendered",
    [
        "auc output_model=/tmp/stolen.txt",
        "auc\tforcedsplits_filename=/etc/passwd",
        "auc'",
        "auc\x00",
        "auc\u2028valid=/etc/shadow",
    ],
)
def test_a_rendered_value_that_would_add_a_parameter_is_refused_when_the_step_runs(
    rendered: str,
) -> None:
    step = lightgbm_step({"metric": "{{ params.metric }}"})
    with pytest.raises(ImportRefusedError, match="LightGBM parameter 'metric' may not hold"):
        step_kind(step, {"metric": rendered}, ALLOW, last=True)


def test_a_lightgbm_class_another_allowed_package_re_exports_is_checked_as_lightgbm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "boosting_wrappers.py").write_text("from lightgbm import LGBMClassifier\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "boosting_wrappers", raising=False)
    allow = allow_list({"MODEL_STEPS_ALLOWED_IMPORTS": "boosting_wrappers"}, [])
    init = {"learning_rate": "0.1 fs=/etc/passwd"}
    with pytest.raises(ImportRefusedError, match="LightGBM parameter 'learning_rate'"):
        step_kind(lightgbm_step(init, "boosting_wrappers"), init, allow, last=True)


def test_plain_values_and_python_side_arguments_fit() -> None:
    init = {
        "objective": "binary",
        "metric": ["auc", "binary_logloss"],
        "learning_rate": 0.05,
        "verbose": -1,
        "save_binary": False,
        "output_model": None,
        "class_weight": {0: 1, 1: 2},
        "n_estimators": 5,
    }
    kind = step_kind(lightgbm_step(init), init, ALLOW, last=True)
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 10, "b": [1.0, 0.0, 1.0, 0.0] * 10})
    y = pd.Series([0, 1, 0, 1] * 10)
    fitted = kind.fit(X, y)
    assert list(kind.predict(fitted, X).shape) == [40]
