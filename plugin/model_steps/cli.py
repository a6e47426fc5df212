"""The ``model-steps`` command: check definitions, manage versions, serve a model.

Airflow is never imported here, so ``validate`` runs in an editor hook or CI job without an
Airflow home; a model's Airflow connection is read only when it names one (and ``--data`` needs
it). ``validate`` imports what the definitions name in a child process, never in this one.
``serve`` imports the handler and the HTTP server only when it runs.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model_steps.airflow.connections import model_storage_options
from model_steps.airflow.plan import dag_ids
from model_steps.definition.cache import ParseCache
from model_steps.definition.data_locations import catalog_places
from model_steps.definition.loader import (
    Catalog,
    LoadedModel,
    allow_list_for,
    load_and_validate,
)
from model_steps.definition.owners import NameRecord
from model_steps.definition.reference import markdown_reference
from model_steps.definition.schema import ModelSpec, json_schema
from model_steps.errors import ModelStepsError, format_problem
from model_steps.examples import write_example_data
from model_steps.runtime.context import Environment, environment
from model_steps.runtime.preflight import check_in_child
from model_steps.settings import AllowList, Settings, load_settings
from model_steps.store.cards import byte_size
from model_steps.store.manifest import (
    Decision,
    EvaluationRecord,
    Manifest,
    published_time,
    version_status,
)
from model_steps.store.runs import STALE_RUN_SECONDS
from model_steps.terminal import escaped_output

__all__ = ["main"]


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    text = markdown_reference() if args.markdown else json.dumps(json_schema(), indent=2)
    print(text.rstrip("\n"))
    return 0


def _paths(args: argparse.Namespace, settings: Settings) -> list[Path]:
    return [Path(p) for p in args.paths] or [settings.dags_folder]


def _catalog(
    args: argparse.Namespace, settings: Settings, allowed: AllowList | None = None
) -> Catalog:
    return load_and_validate(
        _paths(args, settings),
        settings.environ,
        assets_root=settings.assets_root,
        allowed=allowed,
        check_data=True,
        names=NameRecord(settings.names_record, writable=False),
    )


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    allow = allow_list_for(_paths(args, settings), settings.environ)
    catalog = _catalog(args, settings, allow)
    problems = list(catalog.problems)
    if catalog.models:
        options = (
            {m.spec.name: _connection_options(m.spec, settings) for m in catalog.models}
            if args.data
            else None
        )
        specs = [model.spec for model in catalog.models]
        places = catalog_places(settings.environ, allow.code_folders, specs, settings.assets_root)
        problems += check_in_child(catalog.models, allow, settings.environ, options, places)
    for problem in sorted(problems, key=lambda p: (p.file, p.line, p.column)):
        print(format_problem(problem))
    invalid = len({problem.file for problem in problems})
    valid = len(catalog.models) + len(catalog.broken) - invalid
    print(f"{valid} valid model(s), {invalid} invalid file(s)", file=sys.stderr)
    return 1 if problems else 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    catalog = _catalog(args, settings)
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
    """A model by name (in the DAGs folder) or by the path of its YAML; reports why not.

    While its file is broken, a model is its last good definition in the deployment's parse
    cache (what Airflow runs meanwhile), said on stderr with the file's problems: versions,
    rollback, approvals and serving go on from its store.
    """
    path = Path(reference)
    is_file = path.suffix in (".yaml", ".yml") and path.is_file()
    folder = [path] if is_file else [settings.dags_folder]
    cache = ParseCache.open(settings.parse_cache, settings.parse_cache_key, create=False)
    only = None if is_file else reference
    catalog = load_and_validate(folder, settings.environ, only=only, cache=cache)
    found = catalog.models[0] if is_file and catalog.models else catalog.find(reference)
    problems = catalog.problems if found is None else found.problems
    for problem in problems:
        print(format_problem(problem), file=sys.stderr)
    if found is None:
        print(f"no valid model {reference!r} in {folder[0]}", file=sys.stderr)
    elif found.problems:
        print(
            f"note: {found.path} is broken; using the last good definition of "
            f"{found.spec.name!r}, which Airflow runs until the file is fixed",
            file=sys.stderr,
        )
    return found


def _model(reference: str, settings: Settings) -> tuple[ModelSpec, Environment] | None:
    """A model by name or path, with its store."""
    found = _definition(reference, settings)
    if found is None:
        return None
    options = model_storage_options(settings.connection(found.spec.assets.conn_id))
    return found.spec, environment(found.spec, settings, options)


ModelCommand = Callable[[argparse.Namespace, ModelSpec, Environment], int]


def _per_model(command: ModelCommand) -> Callable[[argparse.Namespace, Settings], int]:
    """A command on the model ``args.model`` names; exits 1 when it is not found (said why)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        model = _model(args.model, settings)
        return 1 if model is None else command(args, *model)

    return run


@_per_model
def _versions(args: argparse.Namespace, spec: ModelSpec, env: Environment) -> int:
    pointer = env.store.pointer()
    live = pointer.version if pointer else None
    rows = [("", "VERSION", "STATUS", "PUBLISHED", "DEFINITION", "RUN", "METRICS", "NOTE")]
    for version in env.store.versions():
        manifest = env.store.manifest(version)
        decision = env.store.decision(version)
        metrics = manifest.metrics.get("test") or manifest.metrics.get("train") or {}
        rows.append(
            (
                "*" if live == version else "",
                str(version),
                version_status(manifest, decision, live),
                (published_time(manifest, decision) or "-")[:19],
                manifest.definition_version or "-",
                manifest.run_id,
                " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())) or "-",
                _note(manifest, decision, env.store.evaluations(version)),
            )
        )
    _print_table(rows)
    if len(rows) == 1:
        print(f"{spec.name} has no published version in {env.store.url()}", file=sys.stderr)
    runs = env.store.runs()
    if runs:
        size = byte_size(sum(run.size for run in runs))
        print(
            f"{len(runs)} run(s) left scratch in the store ({size}), kept for retries: "
            f"model-steps runs {args.model}",
            file=sys.stderr,
        )
    return 0


@_per_model
def _runs(args: argparse.Namespace, spec: ModelSpec, env: Environment) -> int:
    rows = [("RUN", "LAST WRITE", "FILES", "SIZE", "TASKS", "PRUNE")]
    for run in env.store.runs():
        order = [step.id for step in spec.steps]
        tasks = ", ".join(
            f"{task}: {run.steps[task].describe()}"
            for task in sorted(run.steps, key=lambda t: (_position(t, order), t))
        )
        left = STALE_RUN_SECONDS - run.age_seconds
        rows.append(
            (
                run.key,
                f"{_duration(run.age_seconds)} ago",
                str(run.files),
                byte_size(run.size),
                tasks or "-",
                "removes it" if run.stale else f"keeps it {_duration(left)} more",
            )
        )
    if len(rows) == 1:
        print(f"{spec.name}: no run left scratch in {env.store.url('runs')}")
        return 0
    _print_table(rows)
    print(
        f"A failed run's scratch stays in {env.store.url('runs')} so that Airflow can retry "
        f"its failed tasks; prune removes a run's scratch {_duration(STALE_RUN_SECONDS)} "
        "after its last write."
    )
    return 0


def _position(task: str, steps: Sequence[str]) -> int:
    """Steps in the model's order, then the other tasks (gate, publish)."""
    return steps.index(task) if task in steps else len(steps)


def _duration(seconds: float) -> str:
    """``3d 4h``, ``5h 20m``, ``12m``: a coarse age for listings."""
    minutes = max(int(seconds // 60), 0)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def _note(
    manifest: Manifest, decision: Decision | None, evaluations: Sequence[EvaluationRecord]
) -> str:
    """Why a version stands where it does, and how its latest evaluation went."""
    notes = []
    if decision is not None:
        because = f": {decision.reason}" if decision.reason else ""
        notes.append(f"{decision.action} by {decision.by}{because}")
    elif manifest.gate is not None and manifest.gate.outcome != "accepted":
        notes.append(manifest.gate.reason)
    if evaluations:
        latest = evaluations[-1]
        scores = " ".join(
            f"{m.name}={m.value:.4g}" for m in latest.performance if m.value is not None
        )
        verdict = "degraded: " + "; ".join(latest.reasons) if latest.degraded else "healthy"
        when = f"evaluated {latest.end_date_time[:10]} ({len(evaluations)} in all)"
        notes.append(f"{when}: {scores}, {verdict}")
        notes += [f"skipped: {check}" for check in latest.skipped()]
    return " | ".join(notes) or "-"


def _audit(event: str, spec: ModelSpec, **details: Any) -> None:
    """Write the change to Airflow's audit log where its metadata DB is reachable; else say so.

    The store has changed either way: an audit log out of reach must not undo or fail it.
    """
    try:
        from model_steps.airflow.audit import record_action

        record_action(event, dag_ids(spec), getpass.getuser(), {"model": spec.name, **details})
    except Exception as error:
        reason = (str(error).splitlines() or [""])[0][:200]
        print(
            f"note: not recorded in Airflow's audit log ({type(error).__name__}: {reason})",
            file=sys.stderr,
        )


def _decider(args: argparse.Namespace) -> str:
    """Who decides: the OS user running the command, the only name it can vouch for.

    Raises:
        ModelStepsError: ``--by`` names someone else.
    """
    user = getpass.getuser()
    if args.by not in (None, user):
        raise ModelStepsError(
            f"--by {args.by!r} is not you: the command line records the OS user who runs it "
            f"({user!r}), as Airflow's own does; to be recorded under your Airflow user, "
            "decide on the Models page"
        )
    return user


@_per_model
def _promote(args: argparse.Namespace, spec: ModelSpec, env: Environment) -> int:
    by = _decider(args)
    pointer = env.store.approve(args.version, by=by, reason=args.reason)
    live = env.store.pointer()
    print(
        f"{spec.name}: version {args.version} approved by {by}; the live version is now "
        f"{live.version if live else pointer.version}"
    )
    _audit("model_steps_approve", spec, version=args.version, reason=args.reason)
    if live is not None and live.version == args.version:
        _announce(spec.name, args.version, pointer.manifest, by)
    return 0


def _announce(model: str, version: int, manifest: str, by: str) -> None:
    """Send the Asset event publish would have sent, where Airflow's metadata DB is reachable."""
    try:
        from model_steps.airflow.events import announce_version_in_new_session

        sent = announce_version_in_new_session(model, version, manifest, by)
    except Exception as error:  # the pointer moved; only the event for "on new version" is lost
        print(
            f"note: handlers follow the new version, but no Airflow Asset event was sent "
            f"({type(error).__name__}: {error}); DAGs scheduled 'on new version' will not run",
            file=sys.stderr,
        )
        return
    if sent:
        print(f"sent the Asset event model-steps.{model} (version {version})")


@_per_model
def _reject(args: argparse.Namespace, spec: ModelSpec, env: Environment) -> int:
    by = _decider(args)
    env.store.reject(args.version, by=by, reason=args.reason)
    print(f"{spec.name}: version {args.version} rejected by {by}: {args.reason}")
    _audit("model_steps_reject", spec, version=args.version, reason=args.reason)
    return 0


@_per_model
def _card(args: argparse.Namespace, spec: ModelSpec, env: Environment) -> int:
    version = args.version
    if version is None:
        pointer = env.store.pointer()
        if pointer is None:
            print(f"{spec.name} has no live version: pass --version N", file=sys.stderr)
            return 1
        version = pointer.version
    print(env.store.card(version).rstrip("\n"))
    return 0


@_per_model
def _rollback(args: argparse.Namespace, spec: ModelSpec, env: Environment) -> int:
    pointer = env.store.rollback(args.to)
    print(f"{spec.name}: current version is now {pointer.version} (was {pointer.rolled_back_from})")
    _audit("model_steps_rollback", spec, version=pointer.version, was=pointer.rolled_back_from)
    return 0


@_per_model
def _prune(args: argparse.Namespace, spec: ModelSpec, env: Environment) -> int:
    deleted = env.store.prune(args.keep, spec.assets.pinned_versions)
    print(f"{spec.name}: deleted versions {', '.join(map(str, deleted)) or 'none'}")
    if deleted:
        _audit("model_steps_prune", spec, deleted=deleted, keep=args.keep)
    return 0


def _example_data(args: argparse.Namespace, settings: Settings) -> int:
    root = args.root or settings.environ.get("MODEL_STEPS_DATA_ROOT") or "data"
    conn_id = args.conn_id or settings.conn_id
    options = _read_connection(conn_id, "the example data") if conn_id else {}
    for url in write_example_data(root, options):
        print(url)
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
            options = _connection_options(found.spec, settings)
        handler = ModelHandler.from_model(
            found,
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


def _connection_options(spec: ModelSpec, settings: Settings) -> dict[str, Any]:
    """Storage options from the model's Airflow connection, when Airflow is installed here."""
    conn_id = settings.connection(spec.assets.conn_id)
    if conn_id is None:
        return {}
    return _read_connection(conn_id, f"model {spec.name!r}")


def _read_connection(conn_id: str, whose: str) -> dict[str, Any]:
    """Storage options from an Airflow connection, or an error saying which one and why."""
    try:
        return model_storage_options(conn_id)
    except ImportError as error:
        raise ModelStepsError(
            f"{whose} takes its storage credentials from the Airflow connection "
            f"{conn_id!r}, but Airflow is not installed here: pass --storage-options JSON"
        ) from error
    except Exception as error:  # the connection is missing or unreadable: say which one
        raise ModelStepsError(
            f"cannot read the Airflow connection {conn_id!r} of {whose}: "
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
        if name == "validate":
            command.add_argument(
                "--data",
                action="store_true",
                help="also read the header of each step's training data and check the target "
                "and feature columns (with the model's assets.conn_id credentials)",
            )
    versions = commands.add_parser("versions", help="list a model's published versions")
    versions.set_defaults(run=_versions)
    rollback = commands.add_parser("rollback", help="point handlers back at an older version")
    rollback.add_argument("--to", type=int, required=True, metavar="N")
    rollback.set_defaults(run=_rollback)
    prune = commands.add_parser("prune", help="delete old versions (never the current one)")
    prune.add_argument("--keep", type=int, required=True, metavar="K")
    prune.set_defaults(run=_prune)
    promote = commands.add_parser(
        "promote", help="approve a candidate waiting for approval: it becomes the live version"
    )
    promote.add_argument("--version", type=int, required=True, metavar="N")
    promote.add_argument("--reason", help="why (recorded with the decision)")
    promote.set_defaults(run=_promote)
    reject = commands.add_parser("reject", help="turn down a candidate waiting for approval")
    reject.add_argument("--version", type=int, required=True, metavar="N")
    reject.add_argument("--reason", required=True, help="why (recorded with the decision)")
    reject.set_defaults(run=_reject)
    for command in (promote, reject):
        command.add_argument(
            "--by",
            help="who decides: only the OS user running the command is accepted (the default), "
            "the name recorded with the decision and in Airflow's audit log",
        )
    runs = commands.add_parser(
        "runs", help="list the scratch failed (or running) runs left in a model's store"
    )
    runs.set_defaults(run=_runs)
    card = commands.add_parser("card", help="print a version's model card")
    card.add_argument("--version", type=int, metavar="N", help="default: the live version")
    card.set_defaults(run=_card)
    for command in (versions, runs, rollback, prune, promote, reject, card):
        command.add_argument("model", metavar="MODEL", help="model name or path to its YAML")
    _serve_parser(commands)
    data = commands.add_parser("example-data", help="write the example models' data")
    data.add_argument(
        "root",
        nargs="?",
        help="folder or fsspec URL, e.g. s3://bucket/data (default: $MODEL_STEPS_DATA_ROOT)",
    )
    data.add_argument(
        "--conn-id",
        help="Airflow connection with the root's credentials (default: the deployment's "
        "default connection, else fsspec's own credential chain)",
    )
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
    "max_client_concurrency": ("N", "requests one client address may have handled at once"),
    "max_client_connections": ("N", "connections one client address may hold open"),
    "max_header_bytes": ("N", "larger request headers get 431"),
    "max_client_header_bytes": (
        "N",
        "header bytes one client address may have in flight on all its connections; more get 431",
    ),
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
    # What the commands print comes from definitions and stores: never raw to a terminal.
    with escaped_output():
        try:
            status: int = args.run(args, load_settings())
        except ModelStepsError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
