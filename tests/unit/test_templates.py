"""Templates render in Jinja's sandbox over the small documented context, and nothing else."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from model_steps.definition.data_locations import data_places
from model_steps.definition.schema import Step
from model_steps.definition.templates import (
    CONTEXT,
    render_native,
    render_text,
    template_context,
)
from model_steps.errors import TemplateError, UnsafeUrlError
from model_steps.runtime.context import RunInfo
from model_steps.runtime.rendered import render_step

RUN_AFTER = datetime(2026, 3, 14, 6, 30, tzinfo=UTC)
PLACES = data_places({"MODEL_STEPS_ALLOWED_DATA": "s3://data/, /srv/data/"}, [])
"""A deployment whose data lives in the ``data`` bucket and under ``/srv/data``."""


def context(**params: Any) -> dict[str, Any]:
    return template_context(
        {"C": 0.5, "name": "baseline", **params}, "manual__2026", run_after=RUN_AFTER
    )


def scheduled() -> dict[str, Any]:
    start = datetime(2026, 3, 13, tzinfo=UTC)
    return template_context(
        {},
        "scheduled__2026",
        run_after=RUN_AFTER,
        logical_date=start,
        data_interval_start=start,
        data_interval_end=RUN_AFTER,
    )


def test_a_parameter_renders_as_its_native_value() -> None:
    init = {"C": "{{ params.C }}", "grid": ["{{ params.C * 2 }}", 3], "fixed": 500}
    assert render_native(init, context(), "init") == {"C": 0.5, "grid": [1.0, 3], "fixed": 500}


def test_run_dates_render_with_airflows_filters_and_macros() -> None:
    url = "s3://b/{{ dag_run.run_after | ds }}/{{ macros.ds_add(dag_run.run_after | ds, -1) }}"
    assert render_text(url, context(), "url") == "s3://b/2026-03-14/2026-03-13"
    dated = "{{ ds }}/{{ ds_nodash }}/{{ ts_nodash }}/{{ data_interval_end | ds }}"
    assert (
        render_text(dated, scheduled(), "url") == "2026-03-13/20260313/20260313T000000/2026-03-14"
    )


def test_a_manual_run_has_no_logical_date_and_says_what_to_use() -> None:
    with pytest.raises(TemplateError, match=r"'ds' is undefined.*dag_run.run_after \| ds"):
        render_text("out/{{ ds }}.csv", context(), "output.infer.url")


def test_the_context_holds_only_the_documented_names() -> None:
    assert set(scheduled()) == set(CONTEXT)


SANDBOX_ESCAPES = [
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{% set _ = cycler.__init__.__globals__.os.popen('id') %}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self._TemplateReference__context }}",
    "{{ config.items() }}",
    "{{ '{0.__class__.__mro__}'.format(params) }}",
    "{{ params.__class__ }}",
    "{{ params.C.__class__.__bases__ }}",
    "{{ macros.datetime.__subclasses__() }}",
    "{{ dag_run.run_after.__class__ }}",
    "{{ params.update({'C': 1}) }}",
    "{{ conn.model_steps_s3.password }}",
    "{{ var.value.api_key }}",
    "{{ ti.xcom_pull() }}",
    "{{ task.__dict__ }}",
    "{{ dag.default_args }}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 99999999 }}",
    "{{ params|attr('__class__') }}",
    "{{ (params|attr('__class__')|attr('__mro__'))[1] }}",
]


@pytest.mark.parametrize("template", SANDBOX_ESCAPES)
def test_a_sandbox_escape_fails_to_render(template: str) -> None:
    with pytest.raises(TemplateError, match=r"^init\.x: template .* failed: "):
        render_native({"x": template}, context(), "init")


def test_a_parameter_named_like_a_dict_method_is_the_parameter() -> None:
    names = ("copy", "items", "keys", "values", "get", "update")
    rendered = render_native(
        {n: f"{{{{ params.{n} }}}}" for n in names}, context(**{n: n for n in names}), "init"
    )
    assert rendered == {n: n for n in names}


def test_a_parameter_value_holding_a_template_is_used_as_text_not_rendered() -> None:
    payload = "{{ lipsum.__globals__['os'].popen('id').read() }}"
    assert render_native("{{ params.name }}", context(name=payload), "init") == payload


def step(url: str) -> Step:
    return Step.model_validate(
        {
            "id": "scale",
            "parameters": {
                "package": "sklearn.preprocessing",
                "class": "StandardScaler",
                "init": {"copy": "{{ params.copy }}"},
                "input": {"train": {"url": "s3://data/iris/train.csv"}},
                "output": {"train": {"url": url}},
            },
        }
    )


def run(**params: Any) -> RunInfo:
    return RunInfo("iris__train", "manual__1", params={"copy": True, **params}, run_after=RUN_AFTER)


def test_a_step_renders_its_init_and_its_phases_urls() -> None:
    rendered = render_step(
        step("s3://data/out/{{ params.name }}.csv"), "train", run(name="a"), PLACES
    )
    assert rendered.init == {"copy": True}
    assert rendered.inputs == {"train": "s3://data/iris/train.csv"}
    assert rendered.outputs == {"train": "s3://data/out/a.csv"}


@pytest.mark.parametrize(
    ("template", "name", "reason"),
    [
        ("s3://data/out/{{ params.name }}.csv", "../../escape_target/x", "'..' segment"),
        ("s3://data/out/{{ params.name }}.csv", "%2e%2e/%2e%2e/other/x", "'..' segment"),
        ("s3://data/out/{{ params.name }}.csv", "%252e%252e/other", "'..' segment"),
        ("s3://data/out/{{ params.name }}.csv", "..\\..\\other", "'..' segment"),
        ("s3://data/out/{{ params.name }}.csv", "x::s3://other-bucket/x", "another scheme"),
        ("s3://data/out/{{ params.name }}.csv", "x/http://evil/x", "another scheme"),
        ("{{ params.name }}/x.csv", "~/.ssh", "absolute path"),
        ("{{ params.name }}.csv", "s3://other-bucket/x", "another scheme"),
        ("{{ params.name }}.csv", "/etc/passwd", "absolute path"),
        ("{% if params.name %}s3://a/{% else %}s3://b/{% endif %}x.csv", "1", "another scheme"),
        ("/srv/data{{ params.name }}.csv", "-other/x", "outside the allowed data locations"),
        ("/srv/data/{{ params.name }}.csv", "a\x00b", "control character"),
        ("s3://data/out/{{ params.name }}.csv", "a\nb", "control character"),
    ],
)
def test_a_url_a_parameter_steers_elsewhere_is_refused(
    template: str, name: str, reason: str
) -> None:
    with pytest.raises(UnsafeUrlError, match=reason) as refused:
        render_step(step(template), "train", run(name=name), PLACES)
    assert "steps[scale].parameters.output.train.url" in str(refused.value)


@pytest.mark.parametrize(
    ("template", "name", "expected"),
    [
        ("s3://data/out/{{ params.name }}.csv", "2026/03/a..b", "s3://data/out/2026/03/a..b.csv"),
        ("/srv/data/{{ params.name }}.csv", "team-a/x", "/srv/data/team-a/x.csv"),
        ("s3://data/out/{{ params.name }}.csv", "/etc/x", "s3://data/out//etc/x.csv"),
        ("/srv/data/{{ params.name }}.csv", "a.b", "/srv/data/a.b.csv"),
    ],
)
def test_a_url_that_stays_in_its_folder_renders(template: str, name: str, expected: str) -> None:
    assert render_step(step(template), "train", run(name=name), PLACES).outputs == {
        "train": expected
    }


GROWTH_BOMBS = [
    "{{ ((9**1024)**1024)**1024 }}",
    "{{ 9**4000 * 9**4000 }}",
    "{{ 10.0 ** 400 }}",
    "{{ 'x' | center(100000000) }}",
    "{{ '%0100000000d' | format(1) }}",
    "{{ 'x' | indent(100000000) }}",
    "{{ ('x' * 99999) | replace('x', 'x' * 99999) }}",
    "{{ ('x' * 99999) | replace('', 'x' * 99999) }}",
    "{{ ([1] * 99999) | join('x' * 99999) }}",
    "{{ ('x\\n' * 50000) | indent(50) }}",
]
"""Values a few bytes of template would make gigabytes or minutes of CPU: ``**`` is bounded by
the size of its result, not its exponent, and filters that grow text by their arguments."""


@pytest.mark.parametrize("template", GROWTH_BOMBS)
def test_a_template_cannot_build_a_huge_value(template: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"^init\.x: template .* failed: "):
        render_native({"x": template}, context(), "init")
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("{{ 2 ** 10 }}", 1024),
        ("{{ 'a-b' | replace('-', '_') }}", "a_b"),
        ("{{ ['a', 'b'] | join('/') }}", "a/b"),
        ("{{ '%05d' | format(3) }}", "00003"),
        ("{{ 'x' | center(3) }}", " x "),
    ],
)
def test_small_arithmetic_and_text_filters_still_render(template: str, value: object) -> None:
    assert render_native({"x": template}, context(), "init") == {"x": value}


def test_a_filter_given_the_wrong_type_is_a_template_error_not_a_crash() -> None:
    with pytest.raises(TemplateError, match="'int' object is not iterable"):
        render_native({"x": "{{ 5 | join('x') }}"}, context(), "init")
