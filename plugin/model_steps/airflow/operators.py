"""The operators every generated task runs: a model step's train, infer or publish action.

They only translate Airflow's run context into plain values and call the Airflow-free runtime
(imported when a task runs, never at parse time); a failure a retry cannot fix fails the task
at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from model_steps.airflow.plan import FAILURE_XCOM, AssetRef, degraded_asset, model_asset
from model_steps.errors import AwaitingApprovalError, DefinitionError, PermanentError, Problem
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.touched import Touched, recording

if TYPE_CHECKING:
    from airflow.sdk import Context

    from model_steps.airflow.lineage import TaskFacts
    from model_steps.definition.schema import ModelSpec, Step
    from model_steps.runtime.context import Environment, RunInfo
    from model_steps.settings import Settings

__all__ = [
    "ASSET_GROUP",
    "InvalidDefinitionOperator",
    "MappedStepOperator",
    "ModelStepOperator",
    "airflow_asset",
]

log = logging.getLogger(__name__)

ASSET_GROUP = "model-steps"
FAILURE_CHARS = 300
"""The longest failure reason a task leaves for the Models page: one line, not a traceback."""
INFER_ACTIONS = frozenset({"partition", "infer", "output"})
"""The infer DAG's actions: each renders its step's infer values (input, output, init)."""


def airflow_asset(ref: AssetRef) -> Asset:
    """The Airflow Asset a plan's reference names (publish updates it, infer may wait on it)."""
    return Asset(name=ref.name, uri=ref.uri, group=ASSET_GROUP)


def _note_failure(context: Context, error: BaseException) -> None:
    """Leave the failure's first line where the Models page reads it (the task log has all)."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    try:
        context["ti"].xcom_push(key=FAILURE_XCOM, value=lines[0][:FAILURE_CHARS])
    except Exception:  # the task's own error is the one to raise; this one goes to its log
        log.exception("could not leave the failure's reason for the Models page")


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
    """Runs one action of a model definition: check, train, infer, gate, publish, evaluate...

    ``rendered`` (the step's init arguments and data URLs) is a template field, so Airflow
    shows it rendered in the task's "Rendered Templates" view, but Airflow's environment never
    renders it: :meth:`render_template_fields` renders it in our sandbox over the small
    documented context (``{{ params.C }}`` stays a float), after checking the run's config.
    """

    template_fields: Sequence[str] = ("rendered",)
    ui_color = "#dbeafe"
    # What the task touched and returned, and how to read a version's manifest: lineage. Set
    # when it runs; class defaults, since a parse builds thousands of operators that never do.
    _touched: Touched | None = None
    _result: dict[str, Any] | None = None
    _manifests: Callable[[int], Any] | None = None

    def __init__(
        self,
        *,
        action: str,
        spec: ModelSpec,
        step_id: str | None = None,
        source: str | None = None,
        definition: str | None = None,
        partition: int | None = None,
        folder: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.action = action
        self.spec = spec
        self.step_id = step_id
        self.partition = partition
        """The partition a mapped infer step's task instance works on."""
        self.source = source  # the definition file: the owner check, and the check task
        self.definition = definition  # the same file, relative to ``folder``
        self.folder = folder
        """The folder the definition was read from (the DAG bundle's, in this process's parse:
        a worker's own checkout of the run's bundle version); its code is the model's own."""
        self.rendered = (
            Rendered.evaluation(spec).fields()
            if action == "evaluate"
            else self._values(lambda step, phase: Rendered.templates(step, phase))
        )

    def _values(self, step_values: Callable[[Step, str], Rendered]) -> dict[str, Any]:
        """What this task renders: its step's values, every step's for ``check``, or none."""
        if self.action == "check":  # every step's training values, as this run renders them
            return {step.id: step_values(step, "train").fields() for step in self.spec.steps}
        step = next((s for s in self.spec.steps if s.id == self.step_id), None)
        phase = "infer" if self.action in INFER_ACTIONS else self.action
        return step_values(step, phase).fields() if step else {}

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Check the run's config, then render the step's templates in the sandbox.

        Airflow calls this before :meth:`execute`, so a config with undeclared keys, a failing
        template or a URL a parameter steers elsewhere fails the task before any work, without
        retries. Airflow's own environment (``jinja_env``) is never used. Every rendered data
        URL must lie where the deployment allows data (``MODEL_STEPS_ALLOWED_DATA``).
        """
        self._render_in_sandbox(context)

    def _render_in_sandbox(self, context: Context) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from model_steps.definition.data_locations import deployment_places
        from model_steps.runtime.rendered import render_evaluation, render_step
        from model_steps.runtime.run_config import check_run_config
        from model_steps.settings import load_settings

        run = _run_info(context, self.spec.name)
        try:
            check_run_config(self.spec, run.conf)
            places = deployment_places(self.spec, self.settings(load_settings()))
            if self.action == "evaluate":
                self.rendered = render_evaluation(self.spec, run, places).fields()
            else:
                self.rendered = self._values(
                    lambda step, phase: render_step(step, phase, run, places)
                )
        except PermanentError as error:
            _note_failure(context, error)
            raise AirflowFailException(str(error)) from error

    def settings(self, deployment: Settings) -> Settings:
        """The deployment's settings for this task's definition: its bundle holds its code."""
        return deployment.in_bundle(Path(self.folder) if self.folder else None)

    def execute(self, context: Context) -> Any:
        """Hand the run's facts to the Airflow-free task function.

        Failures that a retry cannot fix skip the remaining retries.
        """
        # The runtime is imported here, not at parse time: only a running task needs it.
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from model_steps.airflow.connections import model_storage_options
        from model_steps.airflow.masking import mask_known_secrets
        from model_steps.runtime.context import environment
        from model_steps.runtime.ownership import check_definition_owner, folder_of
        from model_steps.settings import load_settings

        run = _run_info(context, self.spec.name)
        try:
            settings = self.settings(load_settings())
            options = model_storage_options(settings.connection(self.spec.assets.conn_id))
            env = environment(self.spec, settings, options, mask_known_secrets)
            source = Path(self.source) if self.source else None
            folder = Path(self.folder) if self.folder else folder_of(source, self.definition)
            check_definition_owner(env.store, source, folder, settings)  # newcomers never act
            self._manifests = env.store.manifest
            with recording() as self._touched:  # kept when the action fails: lineage reports it
                result = ACTIONS[self.action](self, context, run, env)
            self._result = result if isinstance(result, dict) else None
            return result
        except PermanentError as error:
            _note_failure(context, error)
            raise AirflowFailException(str(error)) from error
        except AirflowSkipException:
            raise
        except Exception as error:
            _note_failure(context, error)
            raise

    # -- lineage: Airflow's OpenLineage provider calls these, when it is installed -----------

    def _facts(self) -> TaskFacts:
        """The task's side of its lineage (what :mod:`model_steps.airflow.lineage` reports)."""
        from model_steps.airflow.lineage import TaskFacts
        from model_steps.settings import load_settings

        root = (self.spec.assets.root or load_settings().assets_root).rstrip("/")
        rendered = self.rendered if self.action != "check" else {}
        return TaskFacts(
            action=self.action,
            model=self.spec.name,
            store_url=f"{root}/{self.spec.directory}",
            inputs=dict(rendered.get("inputs", {})),
            outputs=dict(rendered.get("outputs", {})),
            touched=self._touched,
            result=self._result,
            manifests=self._manifests,
        )

    def get_openlineage_facets_on_start(self) -> Any:
        """The datasets this task will read and write (its rendered URLs, its model's store)."""
        from model_steps.airflow.lineage import lineage_on_start

        return lineage_on_start(self._facts())

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The tables read and written (with their columns) and the model versions used."""
        from model_steps.airflow.lineage import lineage_on_complete

        return lineage_on_complete(self._facts())

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """What the task had read (and finished writing) before it failed."""
        from model_steps.airflow.lineage import lineage_on_failure

        return lineage_on_failure(self._facts())


Action = Callable[[ModelStepOperator, "Context", "RunInfo", "Environment"], Any]


def _check(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    """Every check of ``validate --data`` on this run's values, before the first step runs."""
    from model_steps.runtime.preflight import check_run
    from model_steps.settings import load_settings

    steps = {step_id: Rendered(**values) for step_id, values in op.rendered.items()}
    source = Path(op.source) if op.source else None
    return check_run(op.spec, source, env, steps, op.settings(load_settings()).environ)


def _train(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    from model_steps.runtime.train import train_step

    return train_step(op.spec, str(op.step_id), run, env, Rendered(**op.rendered))


def _partition(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    """Split the input; the partitions' indexes (all that XCom carries) map the step tasks."""
    from airflow.sdk import conf

    from model_steps.runtime.partitioned import partition_size, plan_infer
    from model_steps.settings import load_settings

    size = partition_size(op.spec, load_settings().environ)
    limit = conf.getint("core", "max_map_length", fallback=1024)
    return plan_infer(op.spec, run, env, Rendered(**op.rendered), size, limit=limit)


def _infer(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    from model_steps.runtime.partitioned import infer_partition, infer_step

    rendered = Rendered(**op.rendered)
    if op.partition is None:
        return infer_step(op.spec, str(op.step_id), run, env, rendered)
    return infer_partition(op.spec, str(op.step_id), op.partition, run, env, rendered)


def _output(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    from model_steps.runtime.partitioned import write_infer_output

    return write_infer_output(op.spec, run, env, Rendered(**op.rendered))


def _gate(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    from model_steps.runtime.gate import gate

    return gate(op.spec, run, env)


def _publish(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    """Publish, and tell Airflow which version went live (the Asset event's extra)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from model_steps.runtime.publish import publish

    try:
        result = publish(op.spec, run, env)
    except AwaitingApprovalError as waiting:  # nothing went live: no Asset event
        raise AirflowSkipException(str(waiting)) from waiting
    if not result["live"]:  # a newer version went live meanwhile: this one must not trigger
        raise AirflowSkipException(
            f"version {result['version']} of {op.spec.name} is published but a newer version "
            "is live, so no Asset event is sent for it"
        )
    outlet = airflow_asset(model_asset(op.spec.name))
    context["outlet_events"][outlet].extra = {
        "model": op.spec.name,
        "version": result["version"],
        "manifest": result["manifest"],
    }
    return result


def _evaluate(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    from model_steps.runtime.evaluate import evaluate

    return evaluate(op.spec, run, env, Rendered(**op.rendered))


def _degraded(op: ModelStepOperator, context: Context, run: RunInfo, env: Environment) -> Any:
    """Update the degraded Asset when the evaluation found the version degraded, else skip."""
    from airflow.sdk.exceptions import AirflowSkipException

    from model_steps.runtime.evaluate import read_evaluation

    record = read_evaluation(op.spec, run, env)
    if not record.degraded:
        raise AirflowSkipException(f"version {record.version} of {op.spec.name} is not degraded")
    outlet = airflow_asset(degraded_asset(op.spec.name))
    reasons: list[Any] = list(record.reasons)
    context["outlet_events"][outlet].extra = {
        "model": op.spec.name,
        "version": record.version,
        "reasons": reasons,
    }
    return {"version": record.version, "reasons": record.reasons}


ACTIONS: dict[str, Action] = {
    "check": _check,
    "train": _train,
    "partition": _partition,
    "infer": _infer,
    "output": _output,
    "gate": _gate,
    "publish": _publish,
    "evaluate": _evaluate,
    "degraded": _degraded,
}
"""What each planned task action runs (the plan's ``TaskPlan.action``)."""


class MappedStepOperator(ModelStepOperator):
    """A step's infer task, one instance per partition (Airflow's dynamic task mapping).

    Airflow renders a mapped task's template fields with its own environment, never calling
    :meth:`ModelStepOperator.render_template_fields`; so this operator has none, and renders
    its values in the sandbox when it starts executing instead.
    """

    template_fields: Sequence[str] = ()

    def execute(self, context: Context) -> Any:
        """Render in the sandbox (config checked first), then run the step on the partition."""
        self._render_in_sandbox(context)
        return super().execute(context)


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
