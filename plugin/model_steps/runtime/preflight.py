"""Checks before any work: what ``model-steps validate`` and the train DAG's ``check`` task verify.

The loader judges a definition by its names alone, because Airflow runs it on every parse and
must not import scikit-learn or the user's code. These checks import what each step names and
look at it, so a mistake fails in seconds instead of after earlier steps ran:

- every class and function resolves, and is what its role allows (see
  :mod:`model_steps.runtime.resolution`), with the methods the step calls;
- init arguments fit the class's (or function's) signature, and scikit-learn accepts their
  values; ``save``, ``load`` and metric functions take the arguments they will get;
- metrics are scikit-learn scorer names and the estimator has what each needs (``log_loss``
  needs ``predict_proba``);
- with the data, each training table has the target and feature columns the step names.

Each problem is a :class:`~model_steps.errors.Finding` located by field path, which the loader
places at its line and column. ``model-steps validate`` runs the checks in a child process
(:func:`check_in_child`), so validating never leaves a model's code imported in the caller;
the ``check`` task runs them in its own process through :func:`check_run`.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from model_steps.definition.allowlist import Purpose, init_problems, is_own_code
from model_steps.definition.data_locations import NOWHERE, DataPlaces
from model_steps.definition.loader import LoadedModel, locate_findings
from model_steps.definition.schema import ModelSpec, Step
from model_steps.errors import (
    DefinitionError,
    Finding,
    ImportRefusedError,
    MissingAttributeError,
    MissingModuleError,
    ModelStepsError,
    Problem,
    Suggesting,
    UnknownMetricError,
    closest,
)
from model_steps.runtime.context import Environment
from model_steps.runtime.metrics import scoring
from model_steps.runtime.native import NATIVE_BASES, native_problem
from model_steps.runtime.rendered import Rendered
from model_steps.runtime.resolution import require_methods, resolve_class, resolve_function
from model_steps.runtime.steps import calls
from model_steps.runtime.tables import read_columns
from model_steps.settings import AllowList

__all__ = [
    "check_definition",
    "check_in_child",
    "check_model",
    "check_run",
    "read_headers",
]

Loc = tuple[str | int, ...]
_CODES: Mapping[type[Exception], str] = {
    ImportRefusedError: "import_refused",
    MissingModuleError: "missing_module",
    MissingAttributeError: "missing_name",
    UnknownMetricError: "unknown_metric",
}


def check_model(
    spec: ModelSpec,
    allow: AllowList,
    *,
    inits: Mapping[str, Mapping[str, Any]] | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> list[Finding]:
    """Every problem the steps of ``spec`` would hit when they run, located in the model.

    ``inits`` holds each step's init as a run rendered it; without it the values as written
    are checked, leaving templated ones to the run. ``columns`` holds each training table's
    columns by step id (see :func:`read_headers`); without it columns go unchecked.
    """
    findings: list[Finding] = []
    last = len(spec.steps) - 1
    for index, step in enumerate(spec.steps):
        init = (inits or {}).get(step.id, step.parameters.init)
        found = _step_findings(step, init, allow, last=index == last)
        if columns is not None and step.id in columns:
            found += _column_findings(step, columns[step.id])
        where = ("steps", index, "parameters")
        findings += [replace(finding, loc=(*where, *finding.loc)) for finding in found]
    if spec.evaluation is not None:  # scored by the same scorers as the last step's metrics
        for index, metric in enumerate(spec.evaluation.metrics):
            try:
                scoring(metric, allow)
            except ModelStepsError as error:
                findings.append(_finding(("evaluation", "metrics", index), error))
    return findings


def _step_findings(
    step: Step, init: Mapping[str, Any], allow: AllowList, *, last: bool
) -> list[Finding]:
    params = step.parameters
    findings: list[Finding] = []
    cls: type | None = None
    if params.kind == "class":
        cls, findings = _class_findings(step, init, allow, last=last)
    else:
        function, findings = _resolved(("callable",), str(params.callable), "callable", allow)
        if function is not None:
            findings += _signature_findings(function, init, first_is_data=True)
    serializers: tuple[tuple[Purpose, str], ...] = (("save", "obj"), ("load", "data"))
    for purpose, argument in serializers:
        reference = getattr(params, purpose)
        if reference is None:
            continue
        function, found = _resolved((purpose,), reference, purpose, allow)
        if function is not None and not _accepts(function, [None], {}):
            message = f"{reference} must take one argument: it is called as {purpose}({argument})"
            found.append(Finding((purpose,), "signature", message))
        findings += found
    if cls is not None and step.has_assets and step.serializer in NATIVE_BASES:
        problem = native_problem(step, cls)
        if problem is not None:
            findings.append(Finding(("serializer",), "serializer", problem))
    if params.metrics and not last:
        message = "metrics are computed on the last step's predictions only: move them there"
        findings.append(Finding(("metrics",), "metric", message))
    elif params.metrics:
        findings += _metric_findings(step, cls, allow)
    return findings


def _class_findings(
    step: Step, init: Mapping[str, Any], allow: AllowList, *, last: bool
) -> tuple[type | None, list[Finding]]:
    """The step's class (None when it does not resolve) and what is wrong with its use."""
    params = step.parameters
    try:
        cls = resolve_class(str(params.package), str(params.class_), (), allow)
    except MissingModuleError as error:
        return None, [_finding(("package",), error)]
    except ModelStepsError as error:
        return None, [_finding(("class",), error)]
    roles = ("fit", "predict" if last else "transform")
    findings = []
    if not is_own_code(str(params.package), allow):  # rendered values, in the check task
        refused = dict(init_problems(str(params.package), init))
        refused.update(init_problems(cls.__module__, init))  # a re-exported LightGBM class
        findings += [Finding(("init", k), "import_refused", p) for k, p in refused.items()]
    for role, method in zip(roles, calls(step, last=last), strict=True):
        try:
            require_methods(cls, [method])
        except MissingAttributeError as error:
            findings.append(_finding(("methods", role), error))
    findings += _signature_findings(cls, init, first_is_data=False)
    if not any(finding.loc[0] == "init" for finding in findings):
        findings += _value_findings(cls, init)
    return cls, findings


def _resolved(
    loc: Loc, reference: str, purpose: Purpose, allow: AllowList
) -> tuple[Callable[..., Any] | None, list[Finding]]:
    """The function ``reference`` names for ``purpose``, or None and why not."""
    try:
        return resolve_function(reference, purpose, allow), []
    except ModelStepsError as error:
        return None, [_finding(loc, error)]


def _signature_findings(
    target: Callable[..., Any], init: Mapping[str, Any], *, first_is_data: bool
) -> list[Finding]:
    """Init names the class (or function, after its data argument) does not take, or lacks."""
    try:
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):  # a signature Python cannot read: leave it to the run
        return []
    if first_is_data:
        parameters = parameters[1:]
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [p.name for p in parameters if p.kind in named]
    label = getattr(target, "__name__", "the step")
    findings = []
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        findings += [
            Finding(
                ("init", key),
                "init_argument",
                f"{label} takes no argument {key!r}; it takes {', '.join(names) or 'none'}",
                closest(key, names),
            )
            for key in init
            if key not in names
        ]
    missing = [
        p.name
        for p in parameters
        if p.kind in named and p.default is inspect.Parameter.empty and p.name not in init
    ]
    if missing:
        findings.append(
            Finding(("init",), "init_argument", f"{label} needs {', '.join(map(repr, missing))}")
        )
    return findings


def _value_findings(cls: type, init: Mapping[str, Any]) -> list[Finding]:
    """scikit-learn's own check of the init values, which fit would run after earlier steps.

    Only classes that declare their parameters' rules (``_parameter_constraints``: scikit-learn
    estimators) are created, with the values as written; a templated value keeps its default
    here and is checked by the run's ``check`` task once rendered.
    """
    if not hasattr(cls, "_parameter_constraints") or not hasattr(cls, "_validate_params"):
        return []
    plain = {key: value for key, value in init.items() if not _templated(value)}
    try:
        cls(**plain)._validate_params()
    except Exception as error:  # scikit-learn's InvalidParameterError, or a TypeError
        match = re.match(r"The '(\w+)' parameter", str(error))
        key = match.group(1) if match and match.group(1) in init else None
        return [Finding(("init", key) if key else ("init",), "init_value", str(error))]
    return []


def _metric_findings(step: Step, cls: type | None, allow: AllowList) -> list[Finding]:
    """Each metric against scikit-learn's scorers, and whether the model gives what it needs."""
    findings = []
    for index, metric in enumerate(step.parameters.metrics):
        loc: Loc = ("metrics", index) if isinstance(metric, str) else ("metrics", index, "function")
        try:
            found = scoring(metric, allow)
        except ModelStepsError as error:
            findings.append(_finding(loc, error))
            continue
        if not isinstance(metric, str):
            function, _ = _resolved(loc, metric.function, "metric", allow)
            if function is not None and not _accepts(function, [None, None], metric.options):
                message = (
                    f"{metric.function} must take (y_true, y_pred) and the options "
                    f"{sorted(metric.options)}"
                )
                findings.append(Finding(loc, "signature", message))
        needs = found.responses
        if cls is None and step.parameters.kind == "class":
            continue  # the class did not resolve, which is reported already
        has = (lambda name: callable(getattr(cls, name, None))) if cls else ("predict".__eq__)
        if needs and not any(has(name) for name in needs):
            what = cls.__name__ if cls else "a callable step (it gives predictions only)"
            findings.append(
                Finding(
                    ("metrics", index),
                    "metric_needs",
                    f"metric {found.key!r} needs {' or '.join(needs)}, which {what} does not have",
                )
            )
    return findings


def _column_findings(step: Step, columns: Sequence[str]) -> list[Finding]:
    """The target and feature columns the step names that its training table lacks."""
    training = step.parameters.training
    if training is None:
        return []
    wanted: list[tuple[Loc, str]] = (
        [(("training", "target"), training.target)] if training.target else []
    )
    wanted += [
        (("training", "features", i), name) for i, name in enumerate(training.features or [])
    ]
    return [
        Finding(
            loc,
            "missing_column",
            f"column {name!r} is not in the training data; its columns are {', '.join(columns)}",
            closest(name, columns),
        )
        for loc, name in wanted
        if name not in columns
    ]


def read_headers(
    spec: ModelSpec,
    urls: Mapping[str, str],
    storage_options: Mapping[str, Any],
    places: DataPlaces,
    *,
    unreadable: tuple[type[Exception], ...] = (FileNotFoundError, ValueError),
) -> tuple[dict[str, list[str]], list[Finding]]:
    """The columns of each step's training table, and the tables that cannot be read.

    ``urls`` holds rendered URLs by step id; a step missing there uses its URL as written,
    which is skipped while it holds a template (only a run can render it). A table that fails
    with one of ``unreadable`` (by default: missing, or not parsing) is a finding; any other
    error (an outage) is raised, so a task retries it.
    """
    columns: dict[str, list[str]] = {}
    findings: list[Finding] = []
    for index, step in enumerate(spec.steps):
        source = step.parameters.input.train if step.parameters.input else None
        url = urls.get(step.id, source.url if source else "")
        if source is None or "{{" in url or "{%" in url:
            continue
        try:
            columns[step.id] = read_columns(
                url,
                str(source.inferred_format()),
                places=places,
                storage_options=storage_options,
                options=source.options,
            )
        except unreadable as error:
            loc = ("steps", index, "parameters", "input", "train", "url")
            why = "nothing is at this URL" if isinstance(error, FileNotFoundError) else error
            findings.append(Finding(loc, "data", f"cannot read the training data: {why}"))
    return columns, findings


def check_run(
    spec: ModelSpec,
    source: Path | None,
    env: Environment,
    rendered: Mapping[str, Rendered],
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """The train DAG's first task: every check, on this run's rendered values, before any fit.

    Raises:
        DefinitionError: what ``model-steps validate --data`` would report, located in
            ``source`` (the definition file, interpolated from ``environ``) when it can be read.
        FileNotFoundError: a training table is not there (yet): the task's retries apply.
    """
    urls = {step_id: r.inputs["train"] for step_id, r in rendered.items() if "train" in r.inputs}
    # A table that is not there yet (a daily file landing late) is an error the task's retries
    # are for, not a definition problem: only tables that are there and unreadable are findings.
    columns, findings = read_headers(
        spec, urls, env.storage_options, env.places, unreadable=(ValueError,)
    )
    inits = {step_id: r.init for step_id, r in rendered.items()}
    findings += check_model(spec, env.allow, inits=inits, columns=columns)
    if findings:
        raise DefinitionError(locate_findings(source or Path(spec.name), findings, environ))
    return {"steps": len(spec.steps), "columns": {k: len(v) for k, v in columns.items()}}


def check_in_child(
    models: Sequence[LoadedModel],
    allow: AllowList,
    environ: Mapping[str, str],
    storage_options: Mapping[str, Mapping[str, Any]] | None = None,
    places: DataPlaces = NOWHERE,
) -> tuple[Problem, ...]:
    """:func:`check_model` for each model, in a child process; problems located in each file.

    ``environ`` is what the files were interpolated from, so messages never echo its values.

    The child imports scikit-learn and the models' own code, so the caller never does: an
    editor, a CI job or a long-lived process stays as it was. With ``storage_options`` (by
    model name) each training table's header is read too, where ``places`` allow.

    Raises:
        ModelStepsError: the child failed (its error output is in the message).
    """
    request = {
        "allow": {key: list(map(str, value)) for key, value in asdict(allow).items()},
        "places": places.to_json(),
        "models": [
            {
                "spec": model.spec.model_dump(mode="json", by_alias=True),
                "storage_options": None
                if storage_options is None
                else dict(storage_options.get(model.spec.name, {})),
            }
            for model in models
        ],
    }
    child = subprocess.run(
        [sys.executable, "-m", __name__],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise ModelStepsError(f"checking the definitions failed:\n{child.stderr.strip()}")
    answers = json.loads(child.stdout)
    return tuple(
        problem
        for model, found in zip(models, answers, strict=True)
        for problem in locate_findings(model.path, _findings_from_json(found), environ)
    )


def _findings_from_json(found: Iterable[Mapping[str, Any]]) -> list[Finding]:
    return [
        Finding(tuple(f["loc"]), f["code"], f["message"], tuple(f["suggestions"])) for f in found
    ]


def _unchecked(error: Exception) -> Finding:
    """A model whose checks failed in a way no rule foresaw; its error's text is not shown."""
    return Finding(
        (),
        "unusable",
        f"this definition could not be checked ({type(error).__name__}); "
        "nothing of it is used until the file is fixed",
    )


def _child() -> None:
    """The child's side of :func:`check_in_child`: a JSON request in, findings as JSON out.

    Anything the models' code prints goes to standard error, so the answer stays parseable.
    """
    request = json.load(sys.stdin)
    allowed = request["allow"]
    allow = AllowList(
        packages=tuple(allowed["packages"]),
        code_folders=tuple(Path(folder) for folder in allowed["code_folders"]),
        code_modules=tuple(allowed["code_modules"]),
        functions=tuple(allowed["functions"]),
        refused_classes=tuple(allowed["refused_classes"]),
    )
    places = DataPlaces.from_json(request["places"])
    answers = []
    with contextlib.redirect_stdout(sys.stderr):
        for item in request["models"]:
            spec = ModelSpec.model_validate(item["spec"])
            try:
                findings = check_definition(spec, allow, item["storage_options"], places)
            except Exception as error:  # one model's problem: the others are still checked
                findings = [_unchecked(error)]
            answers.append([asdict(finding) for finding in findings])
    print(json.dumps(answers))


def check_definition(
    spec: ModelSpec,
    allow: AllowList,
    storage_options: Mapping[str, Any] | None,
    places: DataPlaces = NOWHERE,
) -> list[Finding]:
    """What ``model-steps validate`` checks beyond the loader, in the child process.

    With ``storage_options`` (the ``--data`` flag) each training table's header is read too,
    and any failure to read it (a URL ``places`` refuse too) is a finding.
    """
    if storage_options is None:
        return check_model(spec, allow)
    columns, findings = read_headers(spec, {}, storage_options, places, unreadable=(Exception,))
    return findings + check_model(spec, allow, columns=columns)


def _finding(loc: Loc, error: Exception) -> Finding:
    """An error as a finding: its reason, near misses and a code naming its kind."""
    code = next((c for kind, c in _CODES.items() if isinstance(error, kind)), "invalid")
    if isinstance(error, Suggesting):
        return Finding(loc, code, error.reason, error.suggestions)
    return Finding(loc, code, str(error))


def _accepts(function: Callable[..., Any], args: list[Any], kwargs: Mapping[str, Any]) -> bool:
    """Whether ``function`` can be called with these arguments (unknown signatures pass)."""
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError:
        return False
    except ValueError:
        return True
    return True


def _templated(value: Any) -> bool:
    """Whether a value holds an Airflow template that only a run can render."""
    text = json.dumps(value, default=str)
    return "{{" in text or "{%" in text


if __name__ == "__main__":
    _child()
