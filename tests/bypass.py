"""The DAG of a loader that forgot validation, for the corpus's bypass DAG files.

``tests/data/specs/code/dags/bypass_*.py`` turn attack definitions into tasks with no check at
parse time, so ``tests/integration/test_refusals.py`` can prove each task refuses on its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from airflow.sdk import DAG

from model_steps.definition.schema import ModelSpec


def bypass_dag(dag_id: str, specs: Iterable[ModelSpec]) -> DAG:
    """A manual DAG without retries whose params are every spec's parameters."""
    return DAG(
        dag_id,
        schedule=None,
        params={name: p.default for spec in specs for name, p in spec.parameters.items()},
        render_template_as_native_obj=True,
        default_args={"retries": 0},
    )
