"""A DAG file that skips every check: the data-location attacks, each step's phase a task.

Like ``bypass_validation.py``, a loader that forgot validation: the corpus's data attacks
(``invalid/security/data_*.yaml``) become tasks without the loader's data check, so
``tests/integration/test_refusals.py`` can prove that each task still refuses its URL or its
options before it reads or writes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from tests.bypass import bypass_dag

from model_steps.airflow.operators import ModelStepOperator
from model_steps.definition.schema import ModelSpec

CODE = Path(__file__).resolve().parents[1]
CORPUS = CODE.parent / "invalid" / "security"


def with_options(model: Any, data: Any) -> Any:
    """``model`` with every ``options`` mapping of ``data`` put back, unchecked."""
    if not isinstance(data, dict):
        return model
    update = {}
    for key, value in data.items():
        child = getattr(model, key, None)
        if key == "options" and isinstance(value, dict):
            update[key] = value
        elif isinstance(child, BaseModel):
            update[key] = with_options(child, value)
        elif isinstance(child, list) and isinstance(value, list):
            update[key] = [with_options(c, v) for c, v in zip(child, value, strict=True)]
    return model.model_copy(update=update)


def without_options(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: without_options(v) for k, v in data.items() if k != "options"}
    return [without_options(v) for v in data] if isinstance(data, list) else data


def bypassed(path: Path) -> ModelSpec:
    """The schema's checks but the options' (``${...}`` is this folder, written out)."""
    data = yaml.safe_load(path.read_text().replace("${MODEL_STEPS_CORPUS_DAGS}", str(CODE)))
    spec: ModelSpec = with_options(ModelSpec.model_validate(without_options(data)), data)
    return spec


SPECS = {path.stem: bypassed(path) for path in sorted(CORPUS.glob("data_*.yaml"))}

with bypass_dag("bypass_data_checks", SPECS.values()) as dag:
    for stem, spec in SPECS.items():
        for step in spec.steps:
            params = step.parameters
            for phase in ("train", "infer"):
                if all(getattr(io, phase, None) is None for io in (params.input, params.output)):
                    continue  # no table in this phase
                ModelStepOperator(
                    task_id=f"{stem}__{step.id}__{phase}", action=phase, spec=spec, step_id=step.id
                )
        if spec.evaluation is not None:
            ModelStepOperator(task_id=f"{stem}__evaluate", action="evaluate", spec=spec)
