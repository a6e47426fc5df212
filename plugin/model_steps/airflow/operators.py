"""The operators every generated task runs: a model step's train, infer or publish action.

They only translate Airflow's run context into plain values and call the Airflow-free runtime
(imported when a task runs, never at parse time); a failure a retry cannot fix fails the task
at once.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from model_steps.airflow.plan import AssetRef, model_asset
from model_steps.errors import DefinitionError, PermanentError, Problem
from model_steps.runtime.rendered import Rendered

if TYPE_CHECKING:
    from airflow.sdk import Context

    from model_steps.definition.schema import ModelSpec, Step
    from model_steps.runtime.context import RunInfo

__all__ = ["ASSET_GROUP", "InvalidDefinitionOperator", "ModelStepOperator", "airflow_asset"]

ASSET_GROUP = "model-steps"


def airflow_asset(ref: AssetRef) -> Asset:
    """The Airflow Asset a plan's reference names (publish updates it, infer may wait on it)."""
    return Asset(name=ref.name, uri=ref.uri, group=ASSET_GROUP)


def _run_info(context: Context, model: str) -> RunInfo:
    from model_steps.runtime.context import RunInfo

    dag_run = context["dag_run"]
    return RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        logical_date=dag_run.logical_date,
        params=dict(context["params"]),
        try_number=context["ti"].try_number,
        version=_event_version(context, model),
        run_after=dag_run.run_after,
        data_interval_start=dag_run.data_interval_start,
        data_interval_end=dag_run.data_interval_end,
        run_type=str(dag_run.run_type) if dag_run.run_type is not None else None,
        conf=dict(dag_run.conf or {}),
    )


def _event_version(context: Context, model: str) -> int | None:
    """The newest version among the model's Asset events that triggered this run, if any.

    An infer run scheduled "on new version" then infers with the version that triggered it,
    even if the pointer moved on (or was rolled back) before the run started.
    """
    events = context.get("triggering_asset_events") or {}
    asset = airflow_asset(model_asset(model))
    versions = [
        int(version)
        for event in events.get(asset, [])
        if type(version := (event.extra or {}).get("version")) is int
    ]
    return max(versions, default=None)


class ModelStepOperator(BaseOperator):
    """Runs one check, train, infer or publish action of a model definition.

    ``rendered`` (the step's init arguments and data URLs) is a template field, so Airflow
    shows it rendered in the task's "Rendered Templates" view, but Airflow's environment never
    renders it: :meth:`render_template_fields` renders it in our sandbox over the small
    documented context (``{{ params.C }}`` stays a float), after checking the run's config.
    """

    template_fields = ("rendered",)
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        action: str,
        spec: ModelSpec,
        step_id: str | None = None,
        source: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.spec = spec
        self.step_id = step_id
        self.source = source
        self.rendered: dict[str, Any] = {
            step.id: asdict(Rendered.templates(step, phase))
            for step, phase in self._rendered_steps()
        }
        if step_id is not None:  # a step's own task holds that step's values only
            self.rendered = self.rendered[step_id]

    def _rendered_steps(self) -> list[tuple[Step, str]]:
        """The steps whose values this task renders: its own, or every one for ``check``."""
        if self.action == "check":  # every step's training values, as the run renders them
            return [(step, "train") for step in self.spec.steps]
        return [(step, self.action) for step in self.spec.steps if step.id == self.step_id]

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Check the run's config, then render the step's templates in the sandbox.

        Airflow calls this before :meth:`execute`, so a config with undeclared keys, a failing
        template or a URL a parameter steers elsewhere fails the task before any work, without
        retries. Airflow's own environment (``jinja_env``) is never used.
        """
        from airflow.sdk.exceptions import AirflowFailException

        from model_steps.runtime.rendered import render_step
        from model_steps.runtime.run_config import check_run_config

        run = _run_info(context, self.spec.name)
        try:
            check_run_config(self.spec, run.conf)
            rendered = {
                step.id: asdict(render_step(step, phase, run))
                for step, phase in self._rendered_steps()
            }
        except PermanentError as error:
            raise AirflowFailException(str(error)) from error
        self.rendered = rendered[self.step_id] if self.step_id is not None else rendered

    def execute(self, context: Context) -> Any:
        """Hand the run's facts to the Airflow-free task function.

        Failures that a retry cannot fix skip the remaining retries.
        """
        # The runtime is imported here, not at parse time: only a running task needs it.
        from airflow.sdk.exceptions import AirflowFailException

        from model_steps.airflow.connections import model_storage_options
        from model_steps.airflow.masking import mask_known_secrets
        from model_steps.runtime.context import environment
        from model_steps.runtime.infer import infer_step
        from model_steps.runtime.preflight import check_run
        from model_steps.runtime.publish import publish
        from model_steps.runtime.train import train_step
        from model_steps.settings import load_settings

        run = _run_info(context, self.spec.name)
        try:
            settings = load_settings()
            options = model_storage_options(settings.connection(self.spec.assets.conn_id))
            env = environment(self.spec, settings, options, mask_known_secrets)
            if self.action == "check":
                steps = {step_id: Rendered(**r) for step_id, r in self.rendered.items()}
                source = Path(self.source) if self.source else None
                return check_run(self.spec, source, env, steps, settings.environ)
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
