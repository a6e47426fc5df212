"""Templates in a definition: the small context they see and the sandbox they render in.

A step's ``init`` values and data URLs may hold Jinja templates (``{{ params.C }}``,
``{{ dag_run.run_after | ds }}``). They are data written by whoever edits the YAML, so they
never render with Airflow's own environment: its native mode is not sandboxed (``lipsum``'s
globals reach ``os``), and its context hands out connections, variables and the task instance.
Here they render in Jinja's immutable sandbox over :data:`CONTEXT` alone, natively for ``init``
(``{{ params.C }}`` stays a float) and as text for URLs.

:func:`template_issues` checks every template when a definition is validated, so a syntax
error, a name outside the context, a private attribute or an undeclared ``params.X`` is
reported with its file, line and column instead of failing a run. jinja2 is imported only
when a definition holds templates.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeAlias

from model_steps.definition.template_bounds import (
    GROWTH,
    MAX_BITS,
    MAX_SIZE,
    bounded_filter,
    repeats_too_much,
    result_bits,
)
from model_steps.definition.urls import location_issue
from model_steps.errors import TemplateError, did_you_mean

if TYPE_CHECKING:
    from jinja2 import Environment, nodes

    from model_steps.definition.schema import ModelSpec, Step

__all__ = [
    "CONTEXT",
    "FILTERS",
    "MACROS",
    "REMOVED_FILTERS",
    "RUN_FIELDS",
    "is_template",
    "render_native",
    "render_text",
    "template_context",
    "template_issues",
    "templated_fields",
]

Loc: TypeAlias = tuple[str | int, ...]
Issue: TypeAlias = tuple[Loc, str, str]

CONTEXT = {
    "params": "the run's parameters: the model's declared ones, as triggered",
    "run_id": "the run's id",
    "dag_run": "the run: run_id, run_after, logical_date, data_interval_start, "
    "data_interval_end, run_type",
    "ds": "the logical date as YYYY-MM-DD (scheduled runs only)",
    "ds_nodash": "the logical date as YYYYMMDD (scheduled runs only)",
    "ts": "the logical date in ISO 8601 (scheduled runs only)",
    "ts_nodash": "the logical date as YYYYMMDDTHHMMSS (scheduled runs only)",
    "logical_date": "the logical date (scheduled runs only)",
    "data_interval_start": "the start of the data interval (scheduled runs only)",
    "data_interval_end": "the end of the data interval (scheduled runs only)",
    "macros": "macros.ds_add, macros.ds_format, macros.datetime, macros.timedelta",
}
"""Every name a template may use; nothing else of Airflow's context (no ``conn``, ``var``,
``ti``, ``task``, ``dag``) and none of Jinja's globals (``lipsum``, ``cycler``, ``range``...)."""
RUN_FIELDS = (
    "run_id",
    "run_after",
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "run_type",
)
"""The attributes of ``dag_run`` a template may read."""
_WITHOUT_LOGICAL_DATE = "manual and asset-triggered runs have no logical date: use "


def _ds(value: date | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d")


def _ds_nodash(value: date | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%d")


def _ts(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _ts_nodash(value: date | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%dT%H%M%S")


def _ts_nodash_with_tz(value: date | None) -> str | None:
    return None if value is None else value.isoformat().replace("-", "").replace(":", "")


FILTERS: Mapping[str, Callable[[date | None], str | None]] = {
    "ds": _ds,
    "ds_nodash": _ds_nodash,
    "ts": _ts,
    "ts_nodash": _ts_nodash,
    "ts_nodash_with_tz": _ts_nodash_with_tz,
}
"""Airflow's date filters, as Airflow defines them: ``{{ dag_run.run_after | ds }}``."""


def _ds_add(ds: str, days: int) -> str:
    """Airflow's ``macros.ds_add``: ``ds_add('2024-01-05', -4)`` is ``'2024-01-01'``."""
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def _ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Airflow's ``macros.ds_format``: ``ds_format('2024-01-05', '%Y-%m-%d', '%d/%m/%Y')``."""
    return datetime.strptime(ds, input_format).strftime(output_format)


MACROS: Mapping[str, Any] = {
    "ds_add": _ds_add,
    "ds_format": _ds_format,
    "datetime": datetime,
    "timedelta": timedelta,
}
"""Airflow's date macros a template may call (``macros.ds_add(ds, 7)``)."""


def template_context(
    params: Mapping[str, Any],
    run_id: str,
    *,
    run_after: datetime | None = None,
    logical_date: datetime | None = None,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    run_type: str | None = None,
) -> dict[str, Any]:
    """The whole context a template renders with: :data:`CONTEXT`, filled for one run.

    Dates a run does not have (a manual run's logical date) are left out, so using one is an
    error that says so rather than an empty path segment.
    """
    context: dict[str, Any] = {
        # Attributes, not a dict: ``params.copy`` must be the parameter, not dict.copy.
        "params": SimpleNamespace(**params),
        "run_id": run_id,
        "dag_run": {
            "run_id": run_id,
            "run_after": run_after,
            "logical_date": logical_date,
            "data_interval_start": data_interval_start,
            "data_interval_end": data_interval_end,
            "run_type": run_type,
        },
        "macros": dict(MACROS),
    }
    if logical_date is not None:
        context.update(
            logical_date=logical_date,
            ds=_ds(logical_date),
            ds_nodash=_ds_nodash(logical_date),
            ts=_ts(logical_date),
            ts_nodash=_ts_nodash(logical_date),
        )
    if data_interval_start is not None and data_interval_end is not None:
        context.update(data_interval_start=data_interval_start, data_interval_end=data_interval_end)
    return context


# -- the sandbox -----------------------------------------------------------------------------------


REMOVED_FILTERS: Mapping[str, str] = {
    "attr": "it reads any attribute by a name built at run time, out of reach of validate's "
    "checks (write params.x or params['x'])",
}
"""Jinja's built-in filters templates do not get, and why: each is what a sandbox escape needs."""


def is_template(value: Any) -> bool:
    """Whether a string holds Jinja syntax (and so is rendered for each run)."""
    return isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#"))


def _finalize(value: Any) -> Any:
    """Fail on an undefined name even where native rendering would return the placeholder."""
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


@functools.cache
def _environment(native: bool) -> Environment:
    """Jinja's immutable sandbox, natively typed or not, with nothing but our filters.

    Jinja's default globals are dropped, the sandbox refuses private attributes and mutation,
    and ``*`` / ``**`` are bounded so a template cannot build a huge value.
    """
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.nativetypes import NativeEnvironment
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "*" and repeats_too_much(left, right):
                raise SecurityError(f"a template may not build values over {MAX_SIZE} items")
            if result_bits(operator, left, right) > MAX_BITS:
                raise SecurityError(f"a template may not build numbers over {MAX_BITS} bits")
            try:
                return super().call_binop(context, operator, left, right)
            except ArithmeticError as error:  # 10.0 ** 400: a template error, not a crash
                raise SecurityError(f"{operator} failed: {error}") from error

    class _Native(NativeEnvironment, _Bounded):  # native values, sandboxed calls
        pass

    kind = _Native if native else _Bounded
    env = kind(undefined=StrictUndefined, finalize=_finalize, autoescape=False, cache_size=0)
    env.globals.clear()
    env.filters.update(FILTERS)
    for name in REMOVED_FILTERS:
        del env.filters[name]
    for name, growth in GROWTH.items():
        env.filters[name] = bounded_filter(env.filters[name], growth)
    return env


def render_native(value: Any, context: Mapping[str, Any], where: str) -> Any:
    """``value`` with every template in it rendered to a native value (dicts and lists too).

    Raises:
        TemplateError: a template failed or did something the sandbox refuses.
    """
    if isinstance(value, dict):
        return {k: render_native(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_native(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return _render(value, context, where, native=True) if is_template(value) else value


def render_text(text: str, context: Mapping[str, Any], where: str) -> str:
    """A template rendered as text (a URL).

    Raises:
        TemplateError: the template failed or did something the sandbox refuses.
    """
    return str(_render(text, context, where, native=False)) if is_template(text) else text


def _render(text: str, context: Mapping[str, Any], where: str, *, native: bool) -> Any:
    from jinja2 import TemplateError as JinjaError

    try:
        return _environment(native).from_string(text).render(context)
    except (JinjaError, ArithmeticError, LookupError, TypeError, ValueError) as error:
        hint = ""
        if "is undefined" in str(error) and any(name in str(error) for name in _DATED):
            hint = f" ({_WITHOUT_LOGICAL_DATE}{{{{ dag_run.run_after | ds }}}})"
        raise TemplateError(f"{where}: template {text!r} failed: {error}{hint}") from error


_DATED = ("'ds'", "'ds_nodash'", "'ts'", "'ts_nodash'", "'logical_date'", "'data_interval_")


# -- checking a definition's templates -----------------------------------------------------------


def templated_fields(step: Step) -> Iterator[tuple[Loc, str]]:
    """Every template of a step, with its location under the step: init values and data URLs."""
    params = step.parameters
    yield from _templates_in(params.init, ("parameters", "init"))
    for direction in ("input", "output"):
        io = getattr(params, direction)
        for phase in ("train", "infer"):
            ref = getattr(io, phase) if io is not None else None
            if ref is not None and is_template(ref.url):
                yield ("parameters", direction, phase, "url"), ref.url


def _templates_in(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _templates_in(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _templates_in(item, (*loc, index))
    elif is_template(value):
        yield loc, value


def template_issues(spec: ModelSpec) -> list[Issue]:
    """Every template problem of a definition, each located at the field that holds it."""
    issues: list[Issue] = []
    for where, text in _model_templates(spec):
        issues.extend((where, code, message) for code, message in _check(text, spec.parameters))
        location = location_issue(text) if where[-1] == "url" else None
        if location is not None:
            issues.append((where, "url_location", location))
    return issues


def _model_templates(spec: ModelSpec) -> Iterator[tuple[Loc, str]]:
    """Every template of a definition: the steps', then the evaluation's data URL."""
    for index, step in enumerate(spec.steps):
        for loc, text in templated_fields(step):
            yield ("steps", index, *loc), text
    evaluation = spec.evaluation
    if evaluation is not None and is_template(evaluation.input.url):
        yield ("evaluation", "input", "url"), evaluation.input.url


def _check(text: str, declared: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return _checked(text, tuple(declared))


@functools.lru_cache(maxsize=4096)
def _checked(text: str, declared: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The problems of one template; cached, since a folder's models repeat their templates."""
    from jinja2 import TemplateSyntaxError, nodes

    env = _environment(native=True)
    try:
        tree = env.parse(text)
    except TemplateSyntaxError as error:
        line = f" (line {error.lineno} of the template)" if "\n" in text.strip() else ""
        return (("template_syntax", f"template syntax error: {error.message}{line}"),)
    everything = list(tree.find_all(nodes.Node))  # one walk; each check filters it
    found = [
        *_refused_names(everything),
        *_refused_nodes(everything),
        *_unknown_filters(everything, env),
        *_undeclared(everything, declared),
    ]
    return tuple(dict.fromkeys(found))


def _free_names(everything: list[nodes.Node]) -> set[str]:
    """Names a template reads that it does not set itself.

    Simpler than Jinja's own analysis (which compiles the template, several times the cost of
    parsing it), and conservative only in the author's favour: a name set anywhere counts as
    set, and rendering still fails on anything undefined.
    """
    from jinja2 import nodes

    names = [n for n in everything if isinstance(n, nodes.Name)]
    stored = {n.name for n in names if n.ctx in ("store", "param")}
    if any(isinstance(n, nodes.For) for n in everything):
        stored.add("loop")
    if any(isinstance(n, nodes.Macro | nodes.CallBlock) for n in everything):
        stored |= {"caller", "varargs", "kwargs"}
    return {n.name for n in names if n.ctx == "load"} - stored


def _refused_names(everything: list[nodes.Node]) -> Iterator[tuple[str, str]]:
    for name in sorted(_free_names(everything) - set(CONTEXT)):
        hint = _hint(did_you_mean(name, CONTEXT))
        yield (
            "template_name",
            f"{name!r} is not available to templates{hint}: they see only "
            f"{', '.join(CONTEXT)} (docs: reference/templates.md)",
        )


def _refused_nodes(everything: list[nodes.Node]) -> Iterator[tuple[str, str]]:
    from jinja2 import nodes

    keys = [_key(node) for node in _lookups(everything)]
    keys += [
        field
        for node in everything
        if isinstance(node, nodes.Getattr)
        for field in _format_fields(node)
    ]
    private = sorted({key for key in keys if key is not None and key.startswith("_")})
    if private:
        yield (
            "template_private",
            f"templates may not read private attributes: {', '.join(map(repr, private))}",
        )
    including = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)
    for node in everything:
        if isinstance(node, including):
            yield (
                "template_include",
                f"templates may not {type(node).__name__.lower()} other templates",
            )


def _unknown_filters(everything: list[nodes.Node], env: Environment) -> Iterator[tuple[str, str]]:
    from jinja2 import nodes

    for node in everything:
        if isinstance(node, nodes.Filter) and node.name in REMOVED_FILTERS:
            why = REMOVED_FILTERS[node.name]
            yield ("template_name", f"filter {node.name!r} is not available to templates: {why}")
        elif isinstance(node, nodes.Filter) and node.name not in env.filters:
            yield ("template_name", f"unknown filter {node.name!r}")
        elif isinstance(node, nodes.Test) and node.name not in env.tests:
            yield ("template_name", f"unknown test {node.name!r}")


def _undeclared(
    everything: list[nodes.Node], declared: tuple[str, ...]
) -> Iterator[tuple[str, str]]:
    """``params.X`` the model does not declare, and ``dag_run`` / ``macros`` attributes."""
    from jinja2 import nodes

    known: dict[str, tuple[Any, str]] = {
        "params": (declared, "parameter"),
        "dag_run": (RUN_FIELDS, "dag_run attribute"),
        "macros": (MACROS, "macro"),
    }
    for node in _lookups(everything):
        base, key = node.node, _key(node)
        if not (isinstance(base, nodes.Name) and base.name in known and key is not None):
            continue
        allowed, what = known[base.name]
        if key in allowed or key.startswith("_"):
            continue
        listing = ", ".join(allowed) or "none"
        hint = _hint(did_you_mean(key, allowed))
        where = " under 'parameters'" if base.name == "params" else ""
        yield (
            "template_undeclared",
            f"{base.name}.{key}: no {what} {key!r} is declared{where}{hint}; known: {listing}",
        )


def _hint(suggestions: tuple[str, ...]) -> str:
    return f" (did you mean {' or '.join(map(repr, suggestions))}?)" if suggestions else ""


def _lookups(everything: list[nodes.Node]) -> Iterator[nodes.Getattr | nodes.Getitem]:
    """Every ``a.b`` and ``a[b]`` of a template."""
    from jinja2 import nodes

    return (n for n in everything if isinstance(n, nodes.Getattr | nodes.Getitem))


def _format_fields(node: nodes.Getattr) -> Iterator[str]:
    """The attributes a ``'{0.__class__}'.format(x)`` string would read, one by one."""
    import string

    from jinja2 import nodes

    text = node.node.value if isinstance(node.node, nodes.Const) else None
    if node.attr not in ("format", "format_map") or not isinstance(text, str):
        return
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(text) if name]
    except ValueError:
        return
    for name in fields:
        yield from (part.rstrip("]") for part in re.split(r"[.\[]", name)[1:])


def _key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    """The attribute or constant string key a node reads, if it is one."""
    from jinja2 import nodes

    if isinstance(node, nodes.Getattr):
        return str(node.attr)
    argument = node.arg
    if isinstance(argument, nodes.Const) and isinstance(argument.value, str):
        return argument.value
    return None
