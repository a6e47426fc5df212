"""The operators every generated task runs: a model step's train, infer or publish action.

They only translate Airflow's run context into plain values and call the Airflow-free runtime
(imported when a task runs, never at parse time); a failure a retry cannot fix fails the task
at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from model_steps.airflow.plan import AssetRef, model_asset
from model_steps.errors import DefinitionError, PermanentError, Problem
from model_steps.runtime.rendered import Rendered

if TYPE_CHECKING:
    from airflow.sdk import Context

    from model_steps.definition.schema import ModelSpec
    from model_steps.runtime.context import RunInfo

__all__ = ["ASSET_GROUP", "InvalidDefinitionOperator", "ModelStepOperator", "airflow_asset"]

ASSET_GROUP = "model-steps"


def airflow_asset(ref: AssetRef) -> Asset:
    """The Airflow Asset a plan's reference names (publish updates it, infer may wait on it)."""
    return Asset(name=ref.name, uri=ref.uri, group=ASSET_GROUP)


def _run_info(context: Context) -> RunInfo:
    from model_steps.runtime.context import RunInfo

    dag_run = context["dag_run"]
    return RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        logical_date=dag_run.logical_date,
        params=dict(context["params"]),
        try_number=context["ti"].try_number,
    )


class ModelStepOperator(BaseOperator):
    """Runs one train, infer or publish action of a model definition.

    ``rendered`` (the step's init arguments and data URLs) is a template field: Airflow renders
    ``{{ params.C }}`` or ``{{ dag_run.run_after | ds }}`` in it before the task runs, as native
    Python values.
    """

    template_fields = ("rendered",)
    ui_color = "#dbeafe"

    def __init__(
        self, *, action: str, spec: ModelSpec, step_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.spec = spec
        self.step_id = step_id
        step = next((s for s in spec.steps if s.id == step_id), None)
        # A shallow copy is enough: Airflow renders into new containers, never in place.
        self.rendered = dict(vars(Rendered.templates(step, action))) if step else {}

    def execute(self, context: Context) -> Any:
        """Hand the run's facts to the Airflow-free task function.

        Failures that a retry cannot fix skip the remaining retries.
        """
        # The runtime is imported here, not at parse time: only a running task needs it.
        from airflow.sdk.exceptions import AirflowFailException

        from model_steps.airflow.connections import model_storage_options
        from model_steps.runtime.context import environment
        from model_steps.runtime.infer import infer_step
        from model_steps.runtime.publish import publish
        from model_steps.runtime.train import train_step
        from model_steps.settings import load_settings

        env = environment(
            self.spec, load_settings(), model_storage_options(self.spec.assets.conn_id)
        )
        run = _run_info(context)
        try:
            if self.action == "publish":
                result = publish(self.spec, run, env)
                outlet = airflow_asset(model_asset(self.spec.name))
                context["outlet_events"][outlet].extra = {
                    "model": self.spec.name,
                    "version": result["version"],
                    "manifest": result["manifest"],
                }
                return result
            step = train_step if self.action == "train" else infer_step
            return step(self.spec, str(self.step_id), run, env, Rendered(**self.rendered))
        except PermanentError as error:
            raise AirflowFailException(str(error)) from error


class InvalidDefinitionOperator(BaseOperator):
    """Fails with the problems of a broken definition, so they show in the task log too."""

    ui_color = "#fee2e2"

    def __init__(self, *, problems: tuple[Problem, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problems = problems

    def execute(self, context: Context) -> Any:
        """Raise the definition's problems: there is nothing to run until the file is fixed."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(DefinitionError(self.problems)))
