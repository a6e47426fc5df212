"""Has fresh data moved away from what the model was trained on? Population stability per feature.

At training, each numeric feature of the training part is summarised by quantile bin edges and
the share of rows in each bin (a few hundred bytes per feature, kept in the manifest). An
evaluation bins its fresh data with the same edges and compares shares with the population
stability index, ``sum((fresh - train) * ln(fresh / train))``: about 0.1 is a small shift, 0.25
a large one. Categorical features are left out: their drift needs labels' own vocabulary.

A small fresh sample has a sizeable index by chance alone: ``n`` rows drawn from the training
distribution itself give an index of about ``chi2(bins - 1) / n`` (the index is a symmetric
divergence, and ``n`` times it is close to Pearson's chi-square statistic). So a feature counts as
drifted only when its index exceeds the threshold *plus* the index such a sample exceeds by
chance one time in a hundred (:func:`sampling_margin`), and a feature with fewer than
``min_rows`` fresh values is not judged at all. The record keeps each feature's row count and
margin beside its index, so a reader sees how much of the number is noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from model_steps.libraries import library
from model_steps.store.manifest import FeatureReference

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "EPSILON",
    "DriftJudgement",
    "feature_references",
    "judge_drift",
    "population_stability",
    "sampling_margin",
]

EPSILON = 1e-4
"""Share given to an empty bin, so a bin that fresh data fills anew counts instead of dividing
by zero."""


def feature_references(
    frame: DataFrame, bins: int, features: Sequence[str] | None = None
) -> dict[str, FeatureReference]:
    """Quantile bins of each numeric feature (or of ``features``) of the training part."""
    np = library("numpy")
    numeric = frame.select_dtypes("number").columns
    names = [str(c) for c in numeric if features is None or str(c) in features]
    references = {}
    for name in names:
        values = frame[name].dropna().to_numpy(dtype=float)
        if values.size == 0:
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
        inner = edges[1:-1]  # outer bins stretch to infinity, so fresh extremes still count
        counts = np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1)
        references[name] = FeatureReference(
            edges=[float(e) for e in inner], proportions=[float(c) / values.size for c in counts]
        )
    return references


def population_stability(
    frame: DataFrame, references: Mapping[str, FeatureReference]
) -> dict[str, float]:
    """The index of each referenced feature present in ``frame`` (missing values left out)."""
    return {name: index for name, (index, _) in _indices(frame, references).items()}


Z_99 = 2.3263478740408408
"""The standard normal's 99th percentile: a margin exceeded by chance once in a hundred."""


def sampling_margin(rows: int, bins: int) -> float:
    """The index ``rows`` values drawn from the training distribution exceed once in a hundred.

    The 99th percentile of chi-square with ``bins - 1`` degrees of freedom (Wilson and
    Hilferty's approximation, within 1 % for two or more degrees), divided by ``rows``: 0.146
    for 149 rows in 10 bins, 0.022 for 1,000.
    """
    freedom = max(bins - 1, 1)
    term = 2 / (9 * freedom)
    quantile = freedom * (1 - term + Z_99 * math.sqrt(term)) ** 3
    return quantile / max(rows, 1)


@dataclass(frozen=True)
class DriftJudgement:
    """What an evaluation found on each watched feature, and what it could not judge."""

    index: dict[str, float] = field(default_factory=dict)
    """Population stability index per feature (judged or not)."""
    rows: dict[str, int] = field(default_factory=dict)
    """Fresh values each index was computed on (missing values left out)."""
    margin: dict[str, float] = field(default_factory=dict)
    """Sampling margin of each judged feature, added to the threshold."""
    reasons: list[str] = field(default_factory=list)
    """One line per drifted feature."""
    unjudged: list[str] = field(default_factory=list)
    """Features with fewer fresh values than ``min_rows``."""


def judge_drift(
    frame: DataFrame,
    references: Mapping[str, FeatureReference],
    threshold: float,
    min_rows: int,
) -> DriftJudgement:
    """Each feature's index, judged against ``threshold`` plus its sampling margin."""
    judgement = DriftJudgement()
    for name, (index, rows) in sorted(_indices(frame, references).items()):
        judgement.index[name], judgement.rows[name] = index, rows
        if rows < min_rows:
            judgement.unjudged.append(name)
            continue
        margin = sampling_margin(rows, len(references[name].proportions))
        judgement.margin[name] = margin
        if index > threshold + margin:
            judgement.reasons.append(
                f"{name} drifted: population stability {index:.3f} > {threshold:g} "
                f"+ {margin:.3f} (sampling margin at {rows} rows)"
            )
    return judgement


def _indices(
    frame: DataFrame, references: Mapping[str, FeatureReference]
) -> dict[str, tuple[float, int]]:
    """Index and fresh row count of each referenced feature present in ``frame``."""
    np = library("numpy")
    found = {}
    for name, reference in references.items():
        if name not in frame.columns:
            continue
        values = frame[name].dropna().to_numpy(dtype=float)
        if values.size == 0:
            continue
        counts = np.bincount(
            np.searchsorted(np.asarray(reference.edges), values, side="right"),
            minlength=len(reference.proportions),
        )
        fresh = [max(float(c) / values.size, EPSILON) for c in counts]
        train = [max(p, EPSILON) for p in reference.proportions]
        index = sum((f - t) * math.log(f / t) for f, t in zip(fresh, train, strict=True))
        found[name] = (index, int(values.size))
    return found
