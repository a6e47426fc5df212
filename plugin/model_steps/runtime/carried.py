"""Columns carried past the model: ids and timestamps a user joins predictions back on.

The first step's ``carry`` columns are taken out of its data before any step sees it, and put
back beside the output, row for row: every step keeps the number and order of rows (one output
per input), so the output's row ``i`` is the input's row ``i`` and the columns join by position.
Between tasks they wait in the first step's scratch; a handler joins them within one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_steps.errors import PermanentError
from model_steps.libraries import library
from model_steps.runtime.splits import require_columns

if TYPE_CHECKING:
    from pandas import DataFrame  # type: ignore[import-untyped, unused-ignore]

    from model_steps.definition.schema import Step

__all__ = ["split_carried", "with_carried"]


def split_carried(frame: DataFrame, step: Step) -> tuple[DataFrame, DataFrame | None]:
    """``frame`` without the step's carried columns, and those columns (None without any).

    Raises:
        MissingColumnsError: a carried column is not in the data.
    """
    carry = step.parameters.carry
    if not carry:
        return frame, None
    require_columns(frame, carry, f" to carry to the output (step {step.id!r}, carry)")
    return frame.drop(columns=carry), frame[carry]


def with_carried(output: DataFrame, carried: DataFrame | None) -> DataFrame:
    """The carried columns first, then the output, joined row by row.

    Raises:
        PermanentError: a step changed the number of rows, or an output column has a carried
            column's name, so the two cannot be put side by side.
    """
    if carried is None:
        return output
    if len(carried) != len(output):
        raise PermanentError(
            f"the output has {len(output)} rows and the data {len(carried)}: a step changed the "
            f"number of rows, so the carried columns {', '.join(carried.columns)} cannot be "
            "joined to it"
        )
    clash = sorted(set(map(str, carried.columns)) & set(map(str, output.columns)))
    if clash:
        raise PermanentError(
            f"the output already has a column {', '.join(map(repr, clash))}: carry a column of "
            "another name"
        )
    return library("pandas").concat(
        [carried.reset_index(drop=True), output.reset_index(drop=True)], axis=1
    )
