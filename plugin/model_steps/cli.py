"""The ``model-steps`` command: check definitions and see what Airflow will build from them.

Airflow is never imported here, so ``validate`` runs in an editor hook or CI job in well under a
second and without an Airflow home.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from model_steps.credentials import model_storage_options
from model_steps.errors import ModelStepsError, format_problem
from model_steps.examples import write_example_data
from model_steps.loader import load_and_validate
from model_steps.plan import dag_ids
from model_steps.reference import markdown_reference
from model_steps.settings import Settings, load_settings
from model_steps.spec import ModelSpec, json_schema
from model_steps.tasks import Environment, environment

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


def _model(reference: str, settings: Settings) -> tuple[ModelSpec, Environment] | None:
    """A model by name (in the DAGs folder) or by the path of its YAML, with its store."""
    path = Path(reference)
    is_file = path.suffix in (".yaml", ".yml") and path.is_file()
    folder = [path] if is_file else [settings.dags_folder]
    catalog = load_and_validate(folder, settings.environ, only=None if is_file else reference)
    found = catalog.models[0] if is_file and catalog.models else catalog.find(reference)
    if found is None:
        for problem in catalog.problems:
            print(format_problem(problem), file=sys.stderr)
        print(f"no valid model {reference!r} in {folder[0]}", file=sys.stderr)
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
    data = commands.add_parser("example-data", help="write the example models' data")
    data.add_argument("root", nargs="?", help="folder (default: $MODEL_STEPS_DATA_ROOT)")
    data.set_defaults(run=_example_data)
    return parser


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
