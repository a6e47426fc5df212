"""The ``model-steps`` command: check definitions, manage versions, serve a model.

Airflow is never imported here, so ``validate`` runs in an editor hook or CI job in well under a
second and without an Airflow home; a model's Airflow connection is read only when it names one.
``serve`` imports the handler and the HTTP server only when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_steps.airflow.connections import model_storage_options
from model_steps.airflow.plan import dag_ids
from model_steps.definition.loader import LoadedModel, load_and_validate
from model_steps.definition.reference import markdown_reference
from model_steps.definition.schema import ModelSpec, json_schema
from model_steps.errors import ModelStepsError, format_problem
from model_steps.examples import write_example_data
from model_steps.runtime.context import Environment, environment
from model_steps.settings import Settings, load_settings

__all__ = ["main"]


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    text = markdown_reference() if args.markdown else json.dumps(json_schema(), indent=2)
    print(text.rstrip("\n"))
    return 0


def _paths(args: argparse.Namespace, settings: Settings) -> list[Path]:
    return [Path(p) for p in args.paths] or [settings.dags_folder]


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_and_validate(_paths(args, settings), settings.environ)
    for problem in catalog.problems:
        print(format_problem(problem))
    valid, broken = len(catalog.models), len(catalog.broken)
    print(f"{valid} valid model(s), {broken} invalid file(s)", file=sys.stderr)
    return 1 if broken else 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    catalog = load_and_validate(_paths(args, settings), settings.environ)
    rows = [("NAME", "STATUS", "TRAIN", "INFER", "SCHEDULES", "DAG IDS")]
    for model in catalog.models:
        spec = model.spec
        infer = (spec.schedule.infer or "manual") if spec.has_infer else "-"
        rows.append(
            (
                spec.name,
                spec.status,
                spec.schedule.train or "manual",
                infer,
                spec.schedule.status,
                ", ".join(dag_ids(spec)),
            )
        )
    for broken in catalog.broken:
        rows.append(
            (
                broken.name or "?",
                "INVALID",
                "-",
                "-",
                "-",
                f"{broken.path} ({len(broken.problems)} problem(s))",
            )
        )
    _print_table(rows)
    return 1 if catalog.broken else 0


def _definition(reference: str, settings: Settings) -> LoadedModel | None:
    """A model by name (in the DAGs folder) or by the path of its YAML; reports why not."""
    path = Path(reference)
    is_file = path.suffix in (".yaml", ".yml") and path.is_file()
    folder = [path] if is_file else [settings.dags_folder]
    catalog = load_and_validate(folder, settings.environ, only=None if is_file else reference)
    found = catalog.models[0] if is_file and catalog.models else catalog.find(reference)
    if found is None:
        for problem in catalog.problems:
            print(format_problem(problem), file=sys.stderr)
        print(f"no valid model {reference!r} in {folder[0]}", file=sys.stderr)
    return found


def _model(reference: str, settings: Settings) -> tuple[ModelSpec, Environment] | None:
    """A model by name or path, with its store."""
    found = _definition(reference, settings)
    if found is None:
        return None
    options = model_storage_options(found.spec.assets.conn_id)
    return found.spec, environment(found.spec, settings, options)


def _versions(args: argparse.Namespace, settings: Settings) -> int:
    model = _model(args.model, settings)
    if model is None:
        return 1
    spec, env = model
    pointer = env.store.pointer()
    rows = [("", "VERSION", "PUBLISHED", "DEFINITION", "RUN", "METRICS")]
    for version in env.store.versions():
        manifest = env.store.manifest(version)
        metrics = manifest.metrics.get("test") or manifest.metrics.get("train") or {}
        rows.append(
            (
                "*" if pointer and pointer.version == version else "",
                str(version),
                manifest.published_at[:19],
                manifest.definition_version or "-",
                manifest.run_id,
                " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())) or "-",
            )
        )
    _print_table(rows)
    if len(rows) == 1:
        print(f"{spec.name} has no published version in {env.store.url()}", file=sys.stderr)
    return 0


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    model = _model(args.model, settings)
    if model is None:
        return 1
    pointer = model[1].store.rollback(args.to)
    print(
        f"{model[0].name}: current version is now {pointer.version} "
        f"(was {pointer.rolled_back_from})"
    )
    return 0


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    model = _model(args.model, settings)
    if model is None:
        return 1
    spec, env = model
    deleted = env.store.prune(args.keep, spec.assets.pinned_versions)
    print(f"{spec.name}: deleted versions {', '.join(map(str, deleted)) or 'none'}")
    return 0


def _example_data(args: argparse.Namespace, settings: Settings) -> int:
    root = Path(args.root or settings.environ.get("MODEL_STEPS_DATA_ROOT") or "data")
    for path in write_example_data(root):
        print(path)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from model_steps.serving.batching import Batching
    from model_steps.serving.handler import HandlerSet, ModelHandler
    from model_steps.serving.limits import ServerLimits
    from model_steps.serving.server import run

    if args.pin is not None and len(args.models) > 1:
        print("error: --pin needs exactly one MODEL (versions differ per model)", file=sys.stderr)
        return 2
    handlers = []
    batching = Batching(args.batch_rows, args.batch_wait_ms / 1000)
    for reference in args.models:
        found = _definition(reference, settings)
        if found is None:
            return 1
        options = args.storage_options
        if options is None:
            options = _connection_options(found.spec)
        handler = ModelHandler.from_definition(
            found.path,
            environ=settings.environ,
            storage_options=options,
            poll_interval=args.poll_interval,
            pin=args.pin,
            warm_up=not args.no_warm_up,
            unload_first=args.unload_first,
            batching=None if args.no_batching else batching,
            strict_values=not args.lenient_values,
        )
        handlers.append(handler)
    limits = ServerLimits(**{name: getattr(args, name) for name in SERVE_LIMITS})
    run(
        HandlerSet(handlers),
        host=args.host,
        port=args.port,
        limits=limits,
        access_log=args.access_log,
    )
    return 0


def _connection_options(spec: ModelSpec) -> dict[str, Any]:
    """Storage options from the model's Airflow connection, when Airflow is installed here."""
    conn_id = spec.assets.conn_id
    try:
        return model_storage_options(conn_id)
    except ImportError as error:
        raise ModelStepsError(
            f"model {spec.name!r} takes its storage credentials from the Airflow connection "
            f"{conn_id!r}, but Airflow is not installed here: pass --storage-options JSON"
        ) from error
    except Exception as error:  # the connection is missing or unreadable: say which one
        raise ModelStepsError(
            f"cannot read the Airflow connection {conn_id!r} of model {spec.name!r}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _json_object(text: str) -> dict[str, Any]:
    """A JSON object, given inline or as ``@FILE`` (which keeps secrets out of ``ps``)."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as error:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {error.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object of fsspec options")
    return value


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-steps", description="Model definitions (YAML) to Airflow DAGs."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="print the JSON Schema of a model file")
    schema.add_argument(
        "--markdown",
        action="store_true",
        help="print the field reference as Markdown tables instead",
    )
    schema.set_defaults(run=_schema)
    for name, run, text in (
        ("validate", _validate, "check definitions; one line per problem, exit 1 if any"),
        ("list", _list, "show each model, its status, schedules and DAG ids"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "paths",
            nargs="*",
            metavar="PATH",
            help="files or folders (default: the Airflow DAGs folder)",
        )
        command.set_defaults(run=run)
    versions = commands.add_parser("versions", help="list a model's published versions")
    versions.set_defaults(run=_versions)
    rollback = commands.add_parser("rollback", help="point handlers back at an older version")
    rollback.add_argument("--to", type=int, required=True, metavar="N")
    rollback.set_defaults(run=_rollback)
    prune = commands.add_parser("prune", help="delete old versions (never the current one)")
    prune.add_argument("--keep", type=int, required=True, metavar="K")
    prune.set_defaults(run=_prune)
    for command in (versions, rollback, prune):
        command.add_argument("model", metavar="MODEL", help="model name or path to its YAML")
    _serve_parser(commands)
    data = commands.add_parser("example-data", help="write the example models' data")
    data.add_argument("root", nargs="?", help="folder (default: $MODEL_STEPS_DATA_ROOT)")
    data.set_defaults(run=_example_data)
    return parser


def _serve_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve models over HTTP, following each newly published version",
        description="POST /predict, GET /health, /version and /metrics (with several MODELs: "
        "POST /models/NAME/predict, GET /models/NAME/version). Stops gracefully on SIGTERM.",
    )
    serve.add_argument("models", nargs="+", metavar="MODEL", help="model name or path to its YAML")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    serve.add_argument(
        "--poll-interval",
        type=_positive(float),
        default=10.0,
        metavar="S",
        help="seconds between checks for a new version (default: %(default)s)",
    )
    serve.add_argument(
        "--pin", type=int, metavar="VERSION", help="serve this version, ignoring new ones"
    )
    serve.add_argument(
        "--unload-first",
        action="store_true",
        help="free the old version before loading the new one (less memory, a 503 gap)",
    )
    serve.add_argument(
        "--no-warm-up", action="store_true", help="skip the trial prediction before a swap"
    )
    _limit_options(serve)
    serve.add_argument(
        "--storage-options",
        type=_json_object,
        metavar="JSON",
        help="fsspec options for the stores, as JSON or @FILE holding it (default: the "
        "model's Airflow connection, if it names one)",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(run=_serve)


SERVE_LIMITS = {
    "max_body_bytes": ("N", "larger request bodies get 413"),
    "max_rows": ("N", "more records per request get 413"),
    "max_concurrency": ("N", "requests handled at once; more get 503"),
    "max_connections": ("N", "open connections served; more get 503"),
    "header_timeout": (
        "S",
        "seconds for a request's headers to arrive, else the connection closes",
    ),
    "body_timeout": ("S", "seconds for a request's body to arrive after its headers, else 408"),
    "keep_alive_timeout": ("S", "seconds an idle kept-alive connection stays open"),
}
"""``ServerLimits`` fields as ``serve`` options (``--max-rows``...): metavar and help."""


def _limit_options(serve: Any) -> None:
    """What one client may cost the server, and how requests are batched and checked."""
    from model_steps.serving.batching import Batching
    from model_steps.serving.limits import ServerLimits

    defaults = ServerLimits()
    for name, (metavar, text) in SERVE_LIMITS.items():
        default = getattr(defaults, name)
        serve.add_argument(
            f"--{name.replace('_', '-')}",
            type=_positive(type(default)),
            default=default,
            metavar=metavar,
            help=f"{text} (default: %(default)s)",
        )
    batching = Batching()
    serve.add_argument(
        "--batch-rows",
        type=_positive(int),
        default=batching.max_rows,
        metavar="N",
        help="concurrent requests share one prediction of up to N rows (default: %(default)s)",
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=_positive(float),
        default=batching.max_wait * 1000,
        metavar="MS",
        help="longest a batch waits for requests still being read (default: %(default)s)",
    )
    serve.add_argument(
        "--no-batching", action="store_true", help="predict every request on its own"
    )
    serve.add_argument(
        "--lenient-values",
        action="store_true",
        help="convert numeric text in number columns instead of refusing it with 422",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args, load_settings())
    except ModelStepsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
