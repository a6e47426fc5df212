"""A DAG file that skips every check: each step of the import-allow-list attacks as a task.

The corpus's own folder (``tests/data/specs/code``) stands in for a DAGs folder, and this file
for a loader that forgot validation: no allow-list at parse time, no ``check`` task, every step
a task of its own. ``tests/integration/test_refusals.py`` runs the DAG to prove that each task
still refuses what its step names, with the message ``model-steps validate`` gives.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.bypass import bypass_dag

from model_steps.airflow.operators import ModelStepOperator
from model_steps.definition.schema import ModelSpec

CORPUS = Path(__file__).resolve().parents[2] / "invalid" / "security" / "imports"
SPECS = {
    path.stem: ModelSpec.model_validate(yaml.safe_load(path.read_text()))  # the schema only
    for path in sorted(CORPUS.glob("*.yaml"))
}


with bypass_dag("bypass_validation", SPECS.values()) as dag:
    for stem, spec in SPECS.items():
        for step in spec.steps:
            ModelStepOperator(
                task_id=f"{stem}__{step.id}", action="train", spec=spec, step_id=step.id
            )
