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

from model_steps.errors import format_problem
from model_steps.loader import load_and_validate
from model_steps.plan import dag_ids
from model_steps.reference import markdown_reference
from model_steps.settings import Settings, load_settings
from model_steps.spec import json_schema

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
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
    return 1 if catalog.broken else 0


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    status: int = args.run(args, load_settings())
    return status


if __name__ == "__main__":
    sys.exit(main())
