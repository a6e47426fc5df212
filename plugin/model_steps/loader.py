"""Model definition files to validated specs, or to every problem each file has.

:func:`load_and_validate` is the one entry point behind the DAG loader, ``model-steps validate``,
the plugin API and the tests, so what the CLI accepts is exactly what Airflow loads. A bad file
never stops the others from loading: its problems are returned beside the good models.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from model_steps.errors import Problem, did_you_mean
from model_steps.interpolation import interpolate
from model_steps.source import SourceError, has_child, locate, read_yaml
from model_steps.spec import KIND, SEMANTIC, ModelSpec

__all__ = [
    "BrokenDefinition",
    "Catalog",
    "LoadedModel",
    "find_definition_files",
    "load_and_validate",
    "load_file",
]

SUFFIXES = (".yaml", ".yml")
_MARKER = re.compile(rb"model-steps/|^kind:\s*[\"']?Model\b", re.MULTILINE)


@dataclass(frozen=True)
class LoadedModel:
    """A valid definition and the file it came from."""

    path: Path
    spec: ModelSpec


@dataclass(frozen=True)
class BrokenDefinition:
    """A model file that cannot be used, with every problem found in it."""

    path: Path
    problems: tuple[Problem, ...]
    name: str | None = None


@dataclass(frozen=True)
class Catalog:
    """What a folder of definitions holds: the usable models and the broken files."""

    models: tuple[LoadedModel, ...]
    broken: tuple[BrokenDefinition, ...]

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every problem of every broken file, in file order."""
        return tuple(p for broken in self.broken for p in broken.problems)

    def find(self, name: str) -> LoadedModel | None:
        """The model called ``name``, if it loaded."""
        return next((m for m in self.models if m.spec.name == name), None)


def find_definition_files(paths: Iterable[Path]) -> list[Path]:
    """YAML files under ``paths`` (files or folders), sorted, skipping hidden entries."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(_walk(path))
        else:
            found.append(path)
    return sorted(set(found))


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        for name in files:
            if name.endswith(SUFFIXES) and not name.startswith("."):
                yield Path(root, name)


def load_file(path: Path, environ: Mapping[str, str]) -> LoadedModel | BrokenDefinition | None:
    """Load one file; ``None`` when it is not a model definition (other YAML is left alone)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        return BrokenDefinition(path, (_problem(path, 0, 0, "", "unreadable", str(error)),))
    if not _MARKER.search(raw):
        return None
    try:
        data = read_yaml(raw)
    except SourceError as error:
        position = error.position
        return BrokenDefinition(
            path,
            (_problem(path, position.line, position.column, error.field, "syntax", error.message),),
        )
    if not _is_model(data):
        return None
    return _validate(path, data, environ)


def _is_model(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    api_version = data.get("apiVersion")
    return data.get("kind") == KIND or (
        isinstance(api_version, str) and api_version.startswith("model-steps/")
    )


def _validate(
    path: Path, data: dict[str, Any], environ: Mapping[str, str]
) -> LoadedModel | BrokenDefinition:
    problems: list[Problem] = []

    def missing_variable(loc: tuple[str | int, ...], name: str) -> None:
        problems.append(
            _located(
                path,
                data,
                loc,
                "env_var",
                f"environment variable {name} is not set; set it or give a "
                f"default with ${{{name}:-default}}",
            )
        )

    interpolate(data, environ, missing_variable)
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as error:
        problems.extend(_validation_problems(path, data, error))
    problems.sort(key=lambda p: (p.line, p.column))
    name = data.get("name") if isinstance(data.get("name"), str) else None
    if problems:
        return BrokenDefinition(path, tuple(problems), name)
    return LoadedModel(path, spec)


def _validation_problems(path: Path, data: Any, error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, ...]] = set()
    for detail in error.errors(include_url=False):
        if detail["type"] == SEMANTIC:
            for loc, code, message in detail["ctx"]["issues"]:
                problems.append(_located(path, data, loc, code, message))
            continue
        loc = _data_loc(data, detail["loc"], detail["type"])
        key = tuple(map(str, loc))
        if key in seen:  # the other members of a union failing on the same value
            continue
        seen.add(key)
        message, suggestions = _message(detail, loc)
        problems.append(_located(path, data, loc, detail["type"], message, suggestions))
    return problems


def _data_loc(data: Any, loc: Sequence[str | int], error_type: str) -> tuple[str | int, ...]:
    """Drop pydantic's union-member tags from ``loc``, keeping the parts the user wrote."""
    kept: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if has_child(node, part):
            kept.append(part)
            node = node[part]
        elif index == len(loc) - 1 and error_type == "missing":
            kept.append(part)
    return tuple(kept)


def _message(detail: Any, loc: tuple[str | int, ...]) -> tuple[str, tuple[str, ...]]:
    """A message that says what was expected, with near misses for unknown keys."""
    kind, text = detail["type"], detail["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        key = str(loc[-1])
        listing = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown field {key!r}{listing}", did_you_mean(key, allowed)
    if kind == "missing":
        return "required field is missing", ()
    if text.startswith("Input should be "):
        return f"expected {text.removeprefix('Input should be ')}, got {_describe(detail)}", ()
    return text.removeprefix("Value error, "), ()


def _describe(detail: Any) -> str:
    value = detail.get("input")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_keys(loc: Sequence[str | int]) -> list[str]:
    """Field names (as written in YAML) of the schema object at ``loc``."""
    annotation: Any = ModelSpec
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {info.alias or name: info for name, info in annotation.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[str(part)].annotation
        elif origin in (list, dict):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or name for name, info in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` to reach the type that holds the fields."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            if len(members) == 1 or models:
                annotation = (models or members)[0]
            else:
                return annotation
        else:
            return annotation


def _located(
    path: Path,
    data: Any,
    loc: Sequence[str | int],
    code: str,
    message: str,
    suggestions: tuple[str, ...] = (),
) -> Problem:
    position = locate(data, loc)
    return _problem(
        path, position.line, position.column, _field_path(loc), code, message, suggestions
    )


def _field_path(loc: Sequence[str | int]) -> str:
    """``('steps', 0, 'id')`` as users write it: ``steps[0].id``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(
    path: Path,
    line: int,
    column: int,
    field: str,
    code: str,
    message: str,
    suggestions: tuple[str, ...] = (),
) -> Problem:
    return Problem(str(path), line, column, field, code, message, suggestions)


def load_and_validate(
    paths: Sequence[Path],
    environ: Mapping[str, str],
    *,
    only: str | None = None,
) -> Catalog:
    """Load every model definition under ``paths`` and check rules across files.

    With ``only``, a model name, files named after the model (``<name>.yaml``) are tried first
    and the first that defines it wins without reading the rest: this is how a task start
    builds just its own DAG. The same file wins in a full load (see :func:`_resolve_names`),
    so both paths agree on which definition a name means.
    """
    files = find_definition_files(paths)
    if only is not None:
        for path in (f for f in files if f.stem == only):
            result = load_file(path, environ)
            if isinstance(result, LoadedModel) and result.spec.name == only:
                return Catalog((result,), ())
    results = [r for r in (load_file(path, environ) for path in files) if r is not None]
    return _resolve_names(results)


def _resolve_names(results: Sequence[LoadedModel | BrokenDefinition]) -> Catalog:
    """One model per name: a file named after the model wins, else the first by path.

    The losers become broken files pointing at the winner, so copying a definition and
    forgetting to rename it never hides the original model's DAGs.
    """
    loaded = [r for r in results if isinstance(r, LoadedModel)]
    broken = [r for r in results if isinstance(r, BrokenDefinition)]
    winners: dict[str, LoadedModel] = {}
    for model in sorted(loaded, key=lambda m: (m.path.stem != m.spec.name, str(m.path))):
        winner = winners.setdefault(model.spec.name, model)
        if winner is not model:
            broken.append(_duplicate(model, winner))
    models = tuple(m for m in loaded if winners[m.spec.name] is m)
    return Catalog(models, tuple(sorted(broken, key=lambda b: str(b.path))))


def _duplicate(model: LoadedModel, winner: LoadedModel) -> BrokenDefinition:
    data = read_yaml(model.path.read_bytes())
    problem = _located(
        model.path,
        data,
        ("name",),
        "duplicate_model",
        f"model name {model.spec.name!r} is already defined in {winner.path}; "
        "names must be unique because the DAG ids derive from them",
    )
    return BrokenDefinition(model.path, (problem,), model.spec.name)
