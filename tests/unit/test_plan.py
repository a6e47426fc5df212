"""The Airflow-free plan: DAG ids, task order, schedules and pass-through arguments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from model_steps.airflow.plan import (
    AssetRef,
    DagPlan,
    degraded_asset,
    invalid_dag_id,
    model_asset,
    model_name_of,
    plan_catalog,
)
from model_steps.definition.loader import load_and_validate
from tests.conftest import EXAMPLES
from tests.definitions import definition

INFER = """\
schedule: {train: 6h, infer: on new version}
parameters: {threshold: {default: 0.5, type: number, maximum: 1}}
airflow:
  task_defaults: {retries: 3, pool: ml}
steps:
  - id: prepare
    parameters:
      package: sklearn.preprocessing
      class: Normalizer
      input:
        train: {url: data/train.csv}
        infer: {url: data/score.csv}
  - id: fit
    has_assets: true
    assets_identifier: model.joblib
    airflow: {queue: gpu, execution_timeout: 10m}
    parameters:
      package: xgboost
      class: XGBClassifier
      output: {infer: {url: "out/{{ ds }}.parquet"}}
"""


def plans_for(tmp_path: Path, text: str) -> dict[str, DagPlan]:
    body = definition("churn").split("steps:")[0] + text
    (tmp_path / "churn.yaml").write_text(body)
    catalog = load_and_validate([tmp_path], {})
    assert catalog.broken == ()
    return {plan.dag_id: plan for plan in plan_catalog(catalog, tmp_path)}


def test_a_model_without_inference_gets_only_a_train_dag(tmp_path: Path) -> None:
    (tmp_path / "churn.yaml").write_text(definition("churn"))
    plans = plan_catalog(load_and_validate([tmp_path], {}), tmp_path)
    assert [plan.dag_id for plan in plans] == ["churn__train"]
    assert [task.task_id for task in plans[0].tasks] == ["check", "fit", "publish"]


def test_train_tasks_check_first_then_chain_the_steps_then_publish(tmp_path: Path) -> None:
    train = plans_for(tmp_path, INFER)["churn__train"]
    assert [(t.task_id, t.action, t.upstream) for t in train.tasks] == [
        ("check", "check", ()),
        ("prepare", "train", ("check",)),
        ("fit", "train", ("prepare",)),
        ("publish", "publish", ("fit",)),
    ]
    assert train.tasks[-1].outlets == (model_asset("churn"),)


def test_infer_tasks_plan_partitions_then_map_each_step_over_them_then_write_the_output(
    tmp_path: Path,
) -> None:
    infer = plans_for(tmp_path, INFER)["churn__infer"]
    assert [(t.task_id, t.action, t.upstream, t.mapped_over) for t in infer.tasks] == [
        ("partitions", "partition", (), None),
        ("prepare", "infer", ("partitions",), "partitions"),
        ("fit", "infer", ("prepare",), "partitions"),
        ("output", "output", ("fit",), None),
    ]


def test_schedules_become_intervals_and_asset_triggers(tmp_path: Path) -> None:
    plans = plans_for(tmp_path, INFER)
    assert plans["churn__train"].schedule == timedelta(hours=6)
    assert plans["churn__infer"].schedule == AssetRef("model-steps.churn", "model-steps://churn/")


def test_task_defaults_and_step_options_pass_through(tmp_path: Path) -> None:
    train = plans_for(tmp_path, INFER)["churn__train"]
    assert train.default_args == {"owner": "airflow", "retries": 3, "pool": "ml"}
    fit = next(task for task in train.tasks if task.task_id == "fit")
    assert fit.options == {"queue": "gpu", "execution_timeout": timedelta(minutes=10)}


def test_parameters_keep_their_rules(tmp_path: Path) -> None:
    param = plans_for(tmp_path, INFER)["churn__train"].params["threshold"]
    assert (param.default, dict(param.schema)) == (0.5, {"type": "number", "maximum": 1.0})


def test_model_dag_ids_map_back_to_the_model() -> None:
    assert model_name_of("churn__train") == "churn"
    assert model_name_of("churn__infer") == "churn"
    assert model_name_of("churn") is None
    assert model_name_of(invalid_dag_id("a/b__train")) is None


def test_placeholder_ids_are_readable_and_stable() -> None:
    assert invalid_dag_id("team a/churn.v2.yaml") == "model_steps_invalid__team_a__churn_v2_yaml"


def test_plans_of_the_examples_are_the_same_every_time() -> None:
    first = plan_catalog(load_and_validate([EXAMPLES], {}), EXAMPLES)
    second = plan_catalog(load_and_validate([EXAMPLES], {}), EXAMPLES)
    assert first == second


GATED = """\
schedule: {train: on degradation}
gate:
  rules: [accuracy >= 0.9]
evaluation:
  input: {url: "fresh/{{ dag_run.run_after | ds }}.csv"}
  target: churned
  schedule: "@weekly"
  rules: [accuracy >= trained - 0.05]
steps:
  - id: fit
    has_assets: true
    assets_identifier: model.joblib
    parameters:
      package: sklearn.linear_model
      class: LogisticRegression
      input: {train: {url: data/train.csv}}
      training: {target: churned, split: {test_size: 0.2}}
      metrics: [accuracy]
"""


def test_a_gated_model_decides_in_its_own_task_before_publish(tmp_path: Path) -> None:
    train = plans_for(tmp_path, GATED)["churn__train"]
    assert [(t.task_id, t.action, t.upstream) for t in train.tasks] == [
        ("check", "check", ()),
        ("fit", "train", ("check",)),
        ("gate", "gate", ("fit",)),
        ("publish", "publish", ("gate",)),
    ]
    assert "`accuracy >= 0.9`" in train.tasks[2].doc_md


def test_an_evaluation_becomes_a_dag_that_signals_degradation(tmp_path: Path) -> None:
    evaluate = plans_for(tmp_path, GATED)["churn__evaluate"]
    assert evaluate.schedule == "@weekly"
    assert [(t.task_id, t.upstream) for t in evaluate.tasks] == [
        ("evaluate", ()),
        ("degraded", ("evaluate",)),
    ]
    assert evaluate.tasks[1].outlets == (degraded_asset("churn"),)
    assert model_name_of("churn__evaluate") == "churn"


def test_the_evaluate_dag_takes_the_models_parameters_as_the_other_dags_do(
    tmp_path: Path,
) -> None:
    # `{{ params.x }}` in evaluation.input renders from these; without them every run failed.
    with_params = GATED.replace(
        "steps:", "parameters: {day: {default: today, type: string}}\nsteps:", 1
    )
    plans = plans_for(tmp_path, with_params)
    evaluate = plans["churn__evaluate"]
    assert list(evaluate.params) == ["day"]
    assert evaluate.params == plans["churn__train"].params


def test_training_on_degradation_waits_on_the_degraded_asset(tmp_path: Path) -> None:
    train = plans_for(tmp_path, GATED)["churn__train"]
    assert train.schedule == AssetRef("model-steps.churn.degraded", "model-steps://churn/degraded")
