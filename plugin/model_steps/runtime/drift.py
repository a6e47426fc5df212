"""Has fresh data moved away from what the model was trained on? Population stability per feature.

At training, each numeric feature of the training part is summarised by quantile bin edges and
the share of rows in each bin (a few hundred bytes per feature, kept in the manifest). An
evaluation bins its fresh data with the same edges and compares shares with the population
stability index, ``sum((fresh - train) * ln(fresh / train))``: about 0.1 is a small shift, 0.25
a large one. Categorical features are left out: their drift needs labels' own vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from model_steps.libraries import library
from model_steps.store.manifest import FeatureReference

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

__all__ = ["EPSILON", "feature_references", "population_stability"]

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
        found[name] = sum((f - t) * math.log(f / t) for f, t in zip(fresh, train, strict=True))
    return found
