"""Routes about models: the listing, one model in detail, infer runs' progress."""

from __future__ import annotations

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep

# The metadata DB's ORM models, read and written through the API server's own session exactly as
# Airflow's public routes do (routes/public/dags.py). They are server-side models, not the
# deprecated DAG-authoring imports: DAGs themselves are built with airflow.sdk (dags.py).
from airflow.models.dagrun import DagRun
from fastapi import APIRouter
from sqlalchemy import select

from model_steps.airflow.api.dag_state import dag_states
from model_steps.airflow.api.dependencies import DefinitionsDep, ListedDep, ModelDep
from model_steps.airflow.api.documents import invalid_files, model_detail, model_summary
from model_steps.airflow.api.permissions import may
from model_steps.airflow.api.store_facts import live_all, live_and_card, open_store
from model_steps.airflow.api_models import (
    InferProgress,
    ModelDetail,
    ModelList,
    RunProgress,
    StepProgress,
)
from model_steps.airflow.plan import INFER_SUFFIX
from model_steps.airflow.shards import parse_warnings
from model_steps.runtime.context import Environment

router = APIRouter()


@router.get("/models", summary="Every model and every definition file that failed")
def list_models(definitions: DefinitionsDep, session: SessionDep, user: GetUserDep) -> ModelList:
    """Models with live pause state, last runs and store facts; broken files with problems.

    Only what the user may read, as Airflow's own DAG listing filters by permission.
    """
    catalog = definitions.catalog(session)
    listed = [m for m in catalog.models if all(may("GET", d, user) for d in m[0].dags)]
    models = [model for model, _ in listed]
    dags = dag_states(session, models)
    lives = live_all(models, definitions)
    return ModelList(
        models=[model_summary(m, dags, live) for m, live in zip(listed, lives, strict=True)],
        invalid=[f for f in invalid_files(catalog) if may("GET", f.dag_id, user)],
        parse_warnings=parse_warnings(definitions.settings),
    )


@router.get("/models/{name}", summary="One model in detail, with its live version's card")
def get_model(listed: ListedDep, definitions: DefinitionsDep, session: SessionDep) -> ModelDetail:
    """The listing's facts plus documentation, parameters, steps and the model card."""
    model = listed[0]
    dags = dag_states(session, [model])
    live, card = live_and_card(model, definitions.settings, card=True)
    return model_detail(model, model_summary(listed, dags, live), card)


@router.get("/models/{name}/progress", summary="Rows done of rows total in running infer runs")
def get_progress(
    model: ModelDep, definitions: DefinitionsDep, session: SessionDep
) -> InferProgress:
    """Each running infer run's steps: partitions and rows done, read from the run's scratch."""
    from model_steps.runtime.context import RunInfo
    from model_steps.runtime.partitioned import run_progress

    dag_id = model.name + INFER_SUFFIX
    running = session.scalars(
        select(DagRun.run_id).where(DagRun.dag_id == dag_id, DagRun.state == "running")
    ).all()
    if not running:
        return InferProgress(runs=[])
    store = open_store(model, definitions.settings)  # the connection's credentials, now
    env = Environment(store, store.storage_options, definitions.settings.allow_list)
    steps = [step.id for step in model.steps]
    return InferProgress(
        runs=[
            RunProgress(
                run_id=run_id,
                steps=[
                    StepProgress(**vars(p))
                    for p in run_progress(steps, RunInfo(dag_id, run_id), env)
                ],
            )
            for run_id in sorted(running)
        ]
    )
