"""Drift of fresh data against the training data: the population stability index per feature."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model_steps.runtime.drift import (
    feature_references,
    judge_drift,
    population_stability,
    sampling_margin,
)


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


def test_the_sampling_margin_is_what_chance_alone_gives_a_sample_of_that_size() -> None:
    references = feature_references(frame(0, rows=20000), bins=10)
    indices = [
        population_stability(frame(seed, rows=149), references)["income"] for seed in range(1, 401)
    ]
    exceeded = sum(index > sampling_margin(149, 10) for index in indices) / len(indices)
    assert round(sampling_margin(149, 10), 3) == 0.146
    assert exceeded <= 0.03  # about once in a hundred


def test_a_small_sample_from_the_training_distribution_is_not_called_drifted() -> None:
    # 149 rows of the training distribution itself whose index crosses the threshold by chance.
    references = feature_references(frame(0, rows=20000), bins=10)
    noisy = frame(123, rows=149)
    judgement = judge_drift(noisy, references, threshold=0.1, min_rows=100)
    assert 0.1 < judgement.index["income"] < 0.1 + judgement.margin["income"]
    assert judgement.reasons == []
    assert judgement.rows == {"income": 149, "age": 149}


def test_a_real_shift_on_a_small_sample_is_still_drift_and_says_its_margin() -> None:
    references = feature_references(frame(0), bins=10)
    judgement = judge_drift(frame(1, shift=10.0, rows=149), references, 0.25, min_rows=100)
    [reason] = judgement.reasons
    assert reason.startswith("income drifted: population stability ")
    assert reason.endswith("> 0.25 + 0.146 (sampling margin at 149 rows)")


def test_a_feature_with_fewer_values_than_min_rows_is_not_judged() -> None:
    references = feature_references(frame(0), bins=10)
    judgement = judge_drift(frame(1, shift=10.0, rows=40), references, 0.25, min_rows=100)
    assert judgement.reasons == []
    assert judgement.unjudged == ["age", "income"]
    assert judgement.rows == {"age": 40, "income": 40}
    assert judgement.index["income"] > 0.25
