"""Small valid definitions that tests extend, so each test shows only what it changes."""

from __future__ import annotations

import textwrap

MINIMAL = """\
apiVersion: model-steps/v1
kind: Model
name: {name}
steps:
  - id: fit
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LinearRegression
      input:
        train: {{url: s3://data/train.csv}}
"""


def definition(name: str = "churn", extra: str = "") -> str:
    """A minimal valid model named ``name``, plus top-level YAML ``extra``."""
    return MINIMAL.format(name=name) + textwrap.dedent(extra)
