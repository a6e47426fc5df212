"""Estimators' own formats against joblib: asset size, save, load and predict after loading.

A step may save xgboost as its own JSON (or UBJSON) model and lightgbm as its own text model
(``serializer: xgboost`` / ``lightgbm``) instead of a joblib pickle. The question: what does the
safer, portable format cost a training run (save) and a handler (load, then predict)? Both sides
go through ``serializer_for`` and ``load_fitted``, as tasks and handlers do, on the same fitted
estimator; the rounds alternate baseline and candidate, and each figure is the median of the
per-round ratios, candidate over joblib (lower is better; size is exact).

Usage: ``python bench/formats.py [--rows 20000] [--trees 300] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

import lightgbm
import xgboost
from sklearn.datasets import make_classification

from model_steps.definition.schema import Step
from model_steps.runtime.serializers import load_fitted, serializer_for
from model_steps.settings import AllowList

PREDICT_ROWS = 1000
ALLOW = AllowList()


def step(package: str, cls: str, identifier: str) -> Step:
    return Step.model_validate(
        {
            "id": "boost",
            "has_assets": True,
            "assets_identifier": identifier,
            "parameters": {"package": package, "class": cls},
        }
    )


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure(fitted: Any, definition: Step, X: Any) -> dict[str, float]:
    """One round: save, load, then predict ``PREDICT_ROWS`` rows with the loaded object."""
    save_s, data = timed(lambda: serializer_for(definition, ALLOW).save(fitted))
    load_s, loaded = timed(lambda: load_fitted(io.BytesIO(data), definition, ALLOW))
    predict_s, _ = timed(lambda: loaded.predict_proba(X[:PREDICT_ROWS]))
    return {"bytes": len(data), "save": save_s, "load": load_s, "predict": predict_s}


def compare(name: str, fitted: Any, baseline: Step, candidate: Step, X: Any, repeat: int) -> None:
    measure(fitted, baseline, X), measure(fitted, candidate, X)  # warm-up, untimed
    ratios: dict[str, list[float]] = {key: [] for key in ("bytes", "save", "load", "predict")}
    seconds: dict[str, list[float]] = {key: [] for key in ("save", "load", "predict")}
    for round_ in range(repeat):
        order = [(baseline, "base"), (candidate, "cand")]
        if round_ % 2:
            order.reverse()
        results = {label: measure(fitted, definition, X) for definition, label in order}
        for key in ratios:
            ratios[key].append(results["cand"][key] / results["base"][key])
        for key in seconds:
            seconds[key].append(results["cand"][key])
    print(f"{name} ({candidate.serializer}, {candidate.assets_identifier}) over joblib:")
    for key, values in ratios.items():
        detail = "" if key == "bytes" else f"  ({statistics.median(seconds[key]) * 1000:.1f} ms)"
        print(f"  {key:8} x{statistics.median(values):.2f}{detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    X, y = make_classification(args.rows, 30, n_informative=12, n_classes=3, random_state=0)
    boost = xgboost.XGBClassifier(n_estimators=args.trees, max_depth=6).fit(X, y)
    joblib_xgb = step("xgboost", "XGBClassifier", "model.joblib")
    for identifier in ("model.json", "model.ubj"):
        native = step("xgboost", "XGBClassifier", identifier)
        compare("XGBClassifier", boost, joblib_xgb, native, X, args.repeat)
    light = lightgbm.LGBMClassifier(n_estimators=args.trees, verbose=-1).fit(X, y)
    compare(
        "LGBMClassifier",
        light,
        step("lightgbm", "LGBMClassifier", "model.joblib"),
        step("lightgbm", "LGBMClassifier", "model.txt"),
        X,
        args.repeat,
    )


if __name__ == "__main__":
    main()
