"""Drift of fresh data against the training data: the population stability index per feature."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model_steps.runtime.drift import feature_references, population_stability


def frame(seed: int, shift: float = 0.0, rows: int = 2000) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": generator.normal(50 + shift, 10, rows),
            "age": generator.integers(18, 90, rows),
            "city": generator.choice(["a", "b"], rows),
        }
    )


def test_references_summarise_numeric_features_in_quantile_bins() -> None:
    references = feature_references(frame(0), bins=10)
    assert set(references) == {"income", "age"}  # categorical features are left out
    income = references["income"]
    assert len(income.proportions) == len(income.edges) + 1 == 10
    assert abs(sum(income.proportions) - 1) < 1e-9
    assert all(abs(p - 0.1) < 0.01 for p in income.proportions)


def test_fresh_data_like_the_training_data_has_a_small_index() -> None:
    references = feature_references(frame(0), bins=10)
    stability = population_stability(frame(1), references)
    assert max(stability.values()) < 0.02


def test_a_shifted_feature_has_a_large_index_and_the_others_stay_small() -> None:
    references = feature_references(frame(0), bins=10)
    stability = population_stability(frame(1, shift=10.0), references)
    assert stability["income"] > 0.25
    assert stability["age"] < 0.02


def test_only_the_watched_features_are_referenced_and_missing_ones_are_skipped() -> None:
    references = feature_references(frame(0), bins=5, features=["age"])
    assert set(references) == {"age"}
    assert population_stability(frame(1).drop(columns="age"), references) == {}
