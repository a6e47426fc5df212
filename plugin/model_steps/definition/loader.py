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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from model_steps.definition.allowlist import refused_references
from model_steps.definition.cache import ParseCache
from model_steps.definition.data_locations import claimed_places, location_issues
from model_steps.definition.folder_index import FolderIndex, ModelFacts, index_context, load_shard
from model_steps.definition.interpolation import Interpolation, interpolate
from model_steps.definition.owners import NameRecord, relative_name
from model_steps.definition.schema import KIND, SEMANTIC, ModelSpec
from model_steps.definition.semantics import structural_issues
from model_steps.definition.shards import Shard
from model_steps.definition.source import (
    MAX_FILE_BYTES,
    NeedsPositions,
    Position,
    SourceError,
    duplicates,
    has_child,
    locate,
    read_plain,
    read_yaml,
)
from model_steps.definition.stores import resolving_once, shared_locations, store_locations
from model_steps.definition.templates import template_issues
from model_steps.errors import Finding, Problem, did_you_mean
from model_steps.settings import LOADER_FILE, AllowList, allow_list, allowed_connections

__all__ = [
    "BrokenDefinition",
    "Catalog",
    "LoadedModel",
    "allow_list_for",
    "count_definition_files",
    "definition_paths",
    "find_definition_files",
    "load_and_validate",
    "load_file",
    "locate_findings",
]

SUFFIXES = (".yaml", ".yml")
_MARKER = re.compile(rb"model-steps/|^kind:\s*[\"']?Model\b", re.MULTILINE)


@dataclass(frozen=True)
class LoadedModel:
    """A valid definition and the file it came from."""

    path: Path
    spec: ModelSpec
    problems: tuple[Problem, ...] = ()
    """The file's problems when it no longer validates and ``spec`` is its last good definition
    (from the parse cache): the model keeps running on it, and says why."""


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
    changed_shards: frozenset[int] = frozenset()
    """Other shards holding a file new or changed since the folder index last saw it."""

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
    return sorted(set(found), key=str)  # the same order; strings compare far faster than paths


def count_definition_files(folder: Path) -> int:
    """How many files :func:`find_definition_files` finds under ``folder``, without paths."""
    return sum(1 for _ in _walk_names(folder))


def definition_paths(folder: Path) -> Iterator[str]:
    """The path of each file :func:`find_definition_files` finds, as a string, unsorted."""
    return (f"{root}/{name}" for root, name in _walk_names(folder))


def _walk(folder: Path, names: Collection[str] | None = None) -> Iterator[Path]:
    """Definition files under ``folder``; only those called one of ``names`` when given.

    Works on plain names and builds a ``Path`` only for a match: a task start walks a folder of
    a thousand definitions to find one.
    """
    for root, name in _walk_names(folder, names):
        yield Path(root, name)


def _walk_names(folder: Path, names: Collection[str] | None = None) -> Iterator[tuple[str, str]]:
    """Each definition file under ``folder`` as its folder and name, in the loader's order.

    Hidden and dunder folders (``__pycache__``) are skipped, as the loader skips them.
    """
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        for name in files:
            wanted = name in names if names is not None else name.endswith(SUFFIXES)
            if wanted and not name.startswith("."):
                yield root, name


def _named(paths: Iterable[Path], stem: str) -> list[Path]:
    """The files under ``paths`` named after a model, ``<stem>.yaml`` or ``<stem>.yml``."""
    names = {stem + suffix for suffix in SUFFIXES}
    found = [p for path in paths if path.is_dir() for p in _walk(path, names)]
    return sorted(found + [p for p in paths if not p.is_dir() and p.name in names])


def load_file(
    path: Path,
    environ: Mapping[str, str],
    allowed: AllowList,
    cache: ParseCache | None = None,
) -> LoadedModel | BrokenDefinition | None:
    """Load one file; ``None`` when it is not a model definition (other YAML is left alone).

    ``allowed`` says what a definition may name (the import allow-list). With a ``cache``, a
    valid file unchanged since it was last validated is not validated again, and a file that
    no longer validates stands as its last good definition, carrying its problems.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # not read whole: a huge file must not cost the parse
            with path.open("rb") as head:
                if not _MARKER.search(head.read(65536)):
                    return None  # other YAML, however large, is left alone
            message = f"the file is {size} bytes; a definition is at most {MAX_FILE_BYTES} bytes"
            return BrokenDefinition(path, (_problem(path, 1, 1, "", "too_large", message),))
        raw = path.read_bytes()
    except OSError as error:
        return BrokenDefinition(path, (_problem(path, 0, 0, "", "unreadable", str(error)),))
    if not _MARKER.search(raw):
        return None
    try:
        if cache is None:
            return _load_bytes(path, raw, environ, allowed)
        spec = cache.get(path, raw, environ, allowed)
        if spec is not None:
            return LoadedModel(path, spec)
        reads = cache.recorder(environ)
        result = _load_bytes(path, raw, reads, allowed)
        if isinstance(result, LoadedModel):
            cache.put(path, raw, reads, allowed, result.spec)
        elif isinstance(result, BrokenDefinition):
            return _last_good(result, cache, environ, allowed)
        return result
    except Exception as error:  # whatever one file makes the loader do wrong stays its problem
        return _unusable(path, error)


def _last_good(
    broken: BrokenDefinition, cache: ParseCache, environ: Mapping[str, str], allowed: AllowList
) -> LoadedModel | BrokenDefinition:
    """The file's last good definition carrying its problems, or the broken file without one."""
    spec = cache.last_good(broken.path, environ, allowed)
    return broken if spec is None else LoadedModel(broken.path, spec, broken.problems)


def _unusable(path: Path, error: BaseException, name: str | None = None) -> BrokenDefinition:
    """A file whose checks failed in a way no rule foresaw: broken, the others still load.

    The message names the error's kind only, never its text, which may quote environment values.
    """
    message = (
        f"this definition could not be checked ({type(error).__name__}); "
        "nothing of it is used until the file is fixed"
    )
    return BrokenDefinition(path, (_problem(path, 1, 1, "", "unusable", message),), name)


def _load_bytes(
    path: Path, raw: bytes, environ: Mapping[str, str], allowed: AllowList
) -> LoadedModel | BrokenDefinition | None:
    try:
        plain = read_plain(raw)
    except NeedsPositions:
        plain = None
    if isinstance(plain, dict):
        if not _is_model(plain):
            return None
        result = _validate(path, plain, environ, allowed)
        if isinstance(result, LoadedModel):
            return result
    return _load_positioned(path, raw, environ, allowed)


def _load_positioned(
    path: Path, raw: bytes, environ: Mapping[str, str], allowed: AllowList
) -> BrokenDefinition | LoadedModel | None:
    """The slow, exact path for files with problems: every problem gets its line and column."""
    try:
        data = read_yaml(raw)
    except SourceError as error:
        position = error.position
        return BrokenDefinition(
            path,
            (_problem(path, position.line, position.column, error.field, "syntax", error.message),),
        )
    if not isinstance(data, dict):
        position = getattr(data, "start", Position(1, 1))
        message = f"a model definition is a mapping of fields, got {_yaml_name(data)}"
        return BrokenDefinition(
            path, (_problem(path, position.line, position.column, "", "not_a_mapping", message),)
        )
    if not _is_model(data):
        return None
    return _validate(path, data, environ, allowed)


def _is_model(data: dict[str, Any]) -> bool:
    api_version = data.get("apiVersion")
    return data.get("kind") == KIND or (
        isinstance(api_version, str) and api_version.startswith("model-steps/")
    )


Loc = tuple[str | int, ...]


def _validate(
    path: Path, data: dict[str, Any], environ: Mapping[str, str], allowed: AllowList
) -> LoadedModel | BrokenDefinition:
    findings = [
        Finding(
            loc,
            "duplicate_key",
            f"duplicate key: {d.key!r} is already set on line "
            f"{d.first.line}; YAML would silently keep only the last one",
        )
        for loc, d in duplicates(data)
    ]
    unresolved: list[Loc] = []

    def unresolved_reference(loc: Loc, message: str) -> None:
        unresolved.append(loc)
        findings.append(Finding(loc, "env_var", message))

    # The copy is skipped only for plain data without references: positioned containers (the
    # slow path) must never reach a definition, so they are always copied into plain ones.
    is_plain = type(data) is dict and not _has_references(data)
    found = Interpolation()
    plain = data if is_plain else interpolate(data, environ, unresolved_reference, found)
    spec, schema_findings = _check(data, plain, found.locations)
    # A value still holding an unresolved ${VAR} was already reported; its own checks are noise.
    findings += [f for f in schema_findings if not any(_under(f.loc, u) for u in unresolved)]
    if spec is None:
        findings += _structural(data, findings)
    else:
        findings += _deployment_findings(spec, environ, allowed)
    name = data.get("name") if isinstance(data.get("name"), str) else None
    if findings:
        problems = [_located(path, data, _hidden(f, found.values)) for f in findings]
        return BrokenDefinition(
            path, tuple(sorted(problems, key=lambda p: (p.line, p.column))), name
        )
    assert spec is not None
    return LoadedModel(path, spec)


def _deployment_findings(
    spec: ModelSpec, environ: Mapping[str, str], allowed: AllowList
) -> list[Finding]:
    """What the deployment forbids: code outside the allow-list, unsafe templates, connections.

    A YAML file must not be a way to run ``os.system``: names are checked, not imported.
    """
    findings = [
        Finding(loc, "import_refused", text) for loc, text in refused_references(spec, allowed)
    ]
    findings += [Finding(loc, code, text) for loc, code, text in template_issues(spec)]
    conn_id, pattern = spec.assets.conn_id, allowed_connections(environ)
    if conn_id is not None and not re.fullmatch(pattern, conn_id):
        findings.append(
            Finding(
                ("assets", "conn_id"),
                "connection_refused",
                f"connection {conn_id!r} is not one definitions may use: the deployment "
                f"allows connection ids matching {pattern!r} (MODEL_STEPS_ALLOWED_CONNECTIONS "
                "or [model_steps] allowed_connections), so a definition cannot borrow the "
                "credentials of another connection",
            )
        )
    return findings


_SHORTEST_HIDDEN = 3
"""Shorter interpolated values are not hidden in messages: they would garble the text."""


def _hidden(finding: Finding, values: Mapping[str, str]) -> Finding:
    """The finding with every interpolated value replaced by the reference it came from.

    Messages quote values; a value read from the environment is shown as ``${NAME}``, so an
    error, a placeholder DAG or the API never echoes what the environment holds.
    """
    message = finding.message
    for value, reference in sorted(values.items(), key=lambda item: -len(item[0])):
        if len(value) >= _SHORTEST_HIDDEN:
            message = message.replace(value, reference)
            message = message.replace(repr(value)[1:-1], reference)
    if message == finding.message:
        return finding
    return Finding(finding.loc, finding.code, message, finding.suggestions)


def _has_references(data: Any) -> bool:
    """Whether any string holds ``${``; most files have none and skip the interpolating copy."""
    if isinstance(data, str):
        return "${" in data
    if isinstance(data, dict):
        return any(_has_references(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_references(v) for v in data)
    return False


def _check(
    source: Any, plain: Any, written: Mapping[Loc, str]
) -> tuple[ModelSpec | None, list[Finding]]:
    """Validate the interpolated ``plain`` copy; locate problems in the positioned ``source``.

    ``written`` holds the interpolated strings as the file writes them, so a message quotes a
    value as written, not as read from the environment.
    """
    try:
        return ModelSpec.model_validate(plain), []
    except ValidationError as error:
        return None, _findings(source, error, written)


def _findings(data: Any, error: ValidationError, written: Mapping[Loc, str]) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[Loc] = set()
    for detail in error.errors(include_url=False):
        context = detail.get("ctx") or {}
        if detail["type"] == SEMANTIC:
            findings.extend(
                Finding(tuple(loc), code, text) for loc, code, text in context["issues"]
            )
            continue
        loc = (*_data_loc(data, detail["loc"], detail["type"]), *context.get("at", ()))
        if loc in seen:  # the other members of a union failing on the same value
            continue
        seen.add(loc)
        if loc in written:
            detail = {**detail, "input": written[loc]}
        message, suggestions = _message(detail, loc)
        suggestions = suggestions or tuple(context.get("suggestions", ()))
        findings.append(Finding(loc, detail["type"], message, suggestions))
    return findings


def _structural(data: dict[str, Any], known: list[Finding]) -> list[Finding]:
    """The step-id and schedule rules, read from the raw data when validation failed."""
    steps = data.get("steps")
    ids = (
        [s.get("id") if isinstance(s, dict) else None for s in steps]
        if isinstance(steps, list)
        else []
    )
    schedule = data.get("schedule")
    train = schedule.get("train") if isinstance(schedule, dict) else None
    seen = {(f.loc, f.message) for f in known}
    return [
        Finding(tuple(loc), code, message)
        for loc, code, message in structural_issues(ids, train)
        if (tuple(loc), message) not in seen
    ]


def _under(loc: Loc, ancestor: Loc) -> bool:
    return loc[: len(ancestor)] == ancestor


def _data_loc(data: Any, loc: Sequence[str | int], error_type: str) -> Loc:
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


_DATE = "a date as YYYY-MM-DD"
_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list (one '- ' item per entry)",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "date_type": _DATE,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    "datetime_type": _DATE,
    "datetime_parsing": _DATE,
    "datetime_from_date_parsing": _DATE,
    "time_delta_type": "a duration such as '30s', '5m', '1h30m' or 'PT5M'",
    "time_delta_parsing": "a duration such as '30s', '5m', '1h30m' or 'PT5M'",
}
_BOOLEAN_HINT = " (unquoted yes/no/on/off/true/false are YAML booleans: quote the value)"


def _message(detail: Any, loc: Loc) -> tuple[str, tuple[str, ...]]:
    """A message that says what was expected, in YAML's words, with near misses."""
    kind, value, context = detail["type"], detail.get("input"), detail.get("ctx") or {}
    got = f", got {_yaml_name(value)}"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        key = str(loc[-1])
        listing = f"; expected one of: {', '.join(allowed)}" if allowed else ""
        return f"unknown field {key!r}{listing}", did_you_mean(key, allowed)
    if kind == "missing":
        return "required field is missing", ()
    if kind == "too_short":
        if loc == ("steps",):
            return "a model needs at least one step", ()
        return f"expected at least {context.get('min_length')} item(s)", ()
    if kind == "string_too_short":
        return "must not be empty", ()
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}{got}", ()
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(context.get("expected", "")))
        hint = _BOOLEAN_HINT if isinstance(value, bool) else ""
        text = f"expected {context.get('expected')}{got}{hint}"
        return text, did_you_mean(str(value), choices) if len(choices) > 1 else ()
    text = str(detail["msg"])
    if text.startswith("Input should be "):
        return f"expected {text.removeprefix('Input should be ')}{got}", ()
    return text.removeprefix("Value error, "), ()


def _yaml_name(value: Any) -> str:
    """A value as YAML shows it (``null``, ``true``), not as Python prints it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
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


def _located(path: Path, data: Any, finding: Finding) -> Problem:
    position = locate(data, finding.loc)
    return _problem(
        path,
        position.line,
        position.column,
        _field_path(finding.loc),
        finding.code,
        finding.message,
        finding.suggestions,
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


def allow_list_for(paths: Sequence[Path], environ: Mapping[str, str]) -> AllowList:
    """The allow-list for definitions under ``paths``: their folders hold the deployment's code.

    A folder given is a DAGs folder (a bundle's). A file given belongs to the bundle it is
    parsed from: the nearest folder above it holding the DAG loader, else its own folder.
    """
    return allow_list(environ, (p if p.is_dir() else _bundle_of(p) for p in paths))


def _bundle_of(definition: Path) -> Path:
    """The folder the DAG processor reads ``definition`` from: its loader's, if it has one."""
    for folder in definition.absolute().parents:
        if (folder / LOADER_FILE).is_file():
            return folder
    return definition.parent


def locate_findings(
    path: Path, findings: Iterable[Finding], environ: Mapping[str, str]
) -> tuple[Problem, ...]:
    """Findings about the definition in ``path``, each at its line and column in the file.

    As for the loader's own problems, a value the file took from ``environ`` is shown as the
    reference it came from. A file that can no longer be read (moved since it was loaded) puts
    them all at 1:1.
    """
    try:
        data: Any = read_yaml(path.read_bytes())
    except (OSError, SourceError):
        data = {}
    found = Interpolation()
    interpolate(data, environ, lambda loc, message: None, found)
    problems = (_located(path, data, _hidden(finding, found.values)) for finding in findings)
    return tuple(sorted(problems, key=lambda p: (p.line, p.column)))


def load_and_validate(
    paths: Sequence[Path],
    environ: Mapping[str, str],
    *,
    only: str | None = None,
    allowed: AllowList | None = None,
    assets_root: str | None = None,
    cache: ParseCache | None = None,
    check_data: bool = False,
    names: NameRecord | None = None,
    shard: Shard | None = None,
) -> Catalog:
    """Load every model definition under ``paths`` and check rules across files.

    ``allowed`` is the import allow-list; by default the estimator packages, what the
    environment adds, and the modules beside the definitions (see :func:`allow_list_for`).
    ``assets_root`` is the deployment's default root, where models without ``assets.root``
    live; without it they are compared with each other only.

    With ``only``, a model name, files named after the model (``<name>.yaml``) are tried first
    and the first that defines it wins without reading the rest: this is how a task start
    builds just its own DAG. The same file wins in a full load (see :func:`_resolve_names`),
    so both paths agree on which definition a name means. ``cache`` (the DAG loader's) skips
    validating files unchanged since their last validation. With ``check_data`` (the DAG
    loader, ``model-steps validate`` and the API) every data URL must lie where the deployment
    allows (:mod:`model_steps.definition.data_locations`); a serving process, which reads no
    tables, skips it. ``names`` is the record of which file owns each model name
    (:mod:`model_steps.definition.owners`): a recorded owner keeps its name against newcomers.

    With ``shard`` (and a ``cache``), only the shard's own files are loaded and returned; the
    rules across files still see every definition, the others through the folder index
    (:mod:`model_steps.definition.folder_index`), so a shard's parse does not grow with the
    folder's validation.
    """
    if allowed is None:
        allowed = allow_list_for(paths, environ)
    folder = next((p for p in paths if p.is_dir()), None)
    owners = names.read(folder) if names is not None else {}
    if only is not None and only in owners and folder is not None:
        owner = load_file(folder / owners[only], environ, allowed, cache)
        if isinstance(owner, LoadedModel) and owner.spec.name == only:
            return Catalog((owner,), ())
    elif only is not None:
        for path in _named(paths, only):
            result = load_file(path, environ, allowed, cache)
            if isinstance(result, LoadedModel) and result.spec.name == only:
                return Catalog((result,), ())
    with resolving_once():  # the checks across files name the same folders thousands of times
        files = find_definition_files(paths)
        others: list[ModelFacts] = []
        changed: set[int] = set()
        results: list[LoadedModel | BrokenDefinition]
        if shard is not None and cache is not None:
            context = index_context(allowed, assets_root, environ)
            index = FolderIndex.open(cache, shard.root, context, environ)

            def load(
                path: Path, reading: Mapping[str, str]
            ) -> tuple[LoadedModel | BrokenDefinition | None, ModelFacts | None]:
                result = load_file(path, reading, allowed, cache)
                return result, _facts(result, assets_root)

            results, others, changed = load_shard(files, shard, index, load)
        else:
            loaded = (load_file(path, environ, allowed, cache) for path in files)
            results = [result for result in loaded if result is not None]
        read_here = {relative_name(p, folder) for p in files if shard is None or shard.owns(p)}
        claims = Claims(results, others, read_here, folder)
        catalog, others, kept, released = _resolve_names(claims, owners)
        if names is not None and only is None:
            names.update(folder, kept, released)
        catalog = _isolate(catalog, lambda spec: store_locations(spec, assets_root))
        catalog, others = _resolve_stores(catalog, others, assets_root)
        if check_data:
            catalog = _resolve_data(catalog, others, environ, allowed.code_folders, assets_root)
        return replace(catalog, changed_shards=frozenset(changed))


def _facts(result: LoadedModel | BrokenDefinition | None, root: str | None) -> ModelFacts | None:
    """What a valid definition claims across files; None for anything else.

    A definition whose stores cannot be worked out claims nothing here: its own shard makes it
    a broken file (:func:`_isolate`), and it must not break the other shards' parse.
    """
    if not isinstance(result, LoadedModel):
        return None
    try:
        stores = store_locations(result.spec, root)
    except Exception:  # that file's problem, reported by its own shard
        return None
    return ModelFacts(result.path, result.spec.name, stores)


Claim = tuple[Path, str, LoadedModel | None]
"""A file claiming a model name: its path, the name, and the model when this load holds it."""


class Claims:
    """What one load knows of the folder's name claims, indexed by file (relative to the folder).

    ``results`` are the files this load read itself (all of them, or its shard's), ``others``
    the valid definitions another shard reads (from the folder index), ``read_here`` the
    relative names of every file this load read, model or not.
    """

    def __init__(
        self,
        results: Sequence[LoadedModel | BrokenDefinition],
        others: Sequence[ModelFacts],
        read_here: Collection[str],
        folder: Path | None,
    ) -> None:
        self.results, self.others, self.read_here, self.folder = results, others, read_here, folder
        self._here = {self.relative(r.path): r for r in results}
        self._elsewhere = {self.relative(f.path): f for f in others}

    def relative(self, path: Path) -> str:
        return relative_name(path, self.folder)

    def released(self, recorded: str, name: str) -> bool:
        """Whether the recorded owner of ``name`` no longer claims it (gone, renamed, no model).

        A broken file whose name could not be read still claims it: a typo in the owner's file
        must not hand its name to whoever waits for one. A file another shard reads is judged by
        its claims in the folder index; one the index holds no valid claim for still claims the
        name while it exists (its own shard releases the name once it really gives it up).
        """
        holder = self._here.get(recorded)
        if holder is not None:
            claimed = holder.spec.name if isinstance(holder, LoadedModel) else holder.name
            return claimed not in (name, None)
        if recorded in self.read_here or self.folder is None:
            return True  # read here and no model definition (any more)
        facts = self._elsewhere.get(recorded)
        if facts is not None:
            return facts.name != name
        return not (self.folder / recorded).is_file()


def _resolve_names(
    claims: Claims, owners: Mapping[str, str]
) -> tuple[Catalog, list[ModelFacts], dict[str, str], list[str]]:
    """One model per name: its recorded owner's, else a file named after it, else the first.

    A recorded file keeps its name while it claims it, broken or not, so a newcomer can never
    take a name by where it sorts; the losers become broken files naming the owner's file.
    Definitions another shard loads take part; those that keep their name are returned. Also
    returns the owners to record (name -> file) and the recorded names no file claims any more.
    """
    loaded = [r for r in claims.results if isinstance(r, LoadedModel)]
    broken = [r for r in claims.results if isinstance(r, BrokenDefinition)]
    every: list[Claim] = [(m.path, m.spec.name, m) for m in loaded]
    every += [(f.path, f.name, None) for f in claims.others]
    by_name: dict[str, list[Claim]] = {}
    for claim in sorted(every, key=lambda c: (c[0].stem != c[1], str(c[0]))):
        by_name.setdefault(claim[1], []).append(claim)
    winners: dict[str, Path] = {}
    kept: dict[str, str] = {}
    for name, candidates in by_name.items():
        holder = owners.get(name)
        if holder is not None and claims.released(holder, name):
            holder = None
        if holder is None:
            winners[name] = candidates[0][0]
            kept[name] = claims.relative(candidates[0][0])
            owner_file = str(candidates[0][0])
        else:  # the recorded owner; while it is broken, its name stays unused
            owner = next((c[0] for c in candidates if claims.relative(c[0]) == holder), None)
            if owner is not None:
                winners[name] = owner
            owner_file = str(claims.folder / holder) if claims.folder else holder
        broken += [
            _duplicate(model, name, owner_file)
            for path, _, model in candidates
            if model is not None and winners.get(name) != path
        ]
    released = [
        name
        for name, recorded in owners.items()
        if name not in by_name and claims.released(recorded, name)
    ]
    usable = tuple(m for m in loaded if winners.get(m.spec.name) == m.path)
    kept_others = [f for f in claims.others if winners.get(f.name) == f.path]
    catalog = Catalog(usable, tuple(sorted(broken, key=lambda b: str(b.path))))
    return catalog, kept_others, kept, released


def _duplicate(model: LoadedModel, name: str, owner_file: str) -> BrokenDefinition:
    data = read_yaml(model.path.read_bytes())
    problem = _located(
        model.path,
        data,
        Finding(
            ("name",),
            "duplicate_model",
            f"model name {name!r} belongs to the definition in {owner_file}; names are "
            "unique because the DAG ids and the store derive from them: give this model "
            "another name (to move or rename the model's own file, move it: the old path "
            "then no longer claims the name)",
        ),
    )
    return BrokenDefinition(model.path, (problem,), name)


def _isolate(catalog: Catalog, probe: Callable[[ModelSpec], object]) -> Catalog:
    """Models on which ``probe`` (a piece of a check across files) raises become broken.

    The checks across files see every model at once; one model's odd value must not raise out
    of them and break the whole folder, so each model's part is tried on its own first.
    """
    kept: list[LoadedModel] = []
    broken = list(catalog.broken)
    for model in catalog.models:
        try:
            probe(model.spec)
        except Exception as error:  # this model's problem, never the folder's
            broken.append(_unusable(model.path, error, model.spec.name))
        else:
            kept.append(model)
    if len(kept) == len(catalog.models):
        return catalog
    return Catalog(tuple(kept), tuple(sorted(broken, key=lambda b: str(b.path))))


def _resolve_stores(
    catalog: Catalog, others: Sequence[ModelFacts], assets_root: str | None
) -> tuple[Catalog, list[ModelFacts]]:
    """Models whose stores coincide or nest are all broken, each pointing at the others.

    Neither wins: whichever was there first, sharing a store would let each publish over,
    prune and serve the other's versions. The message names files, never the resolved URL,
    which may hold interpolated values. ``others`` (another shard's) take part; those sharing
    no store are returned.
    """
    models = catalog.models
    claims = [_facts(m, assets_root) or ModelFacts(m.path, m.spec.name, ()) for m in models]
    claims += others
    shared = shared_locations([c.stores for c in claims])
    if not shared:
        return catalog, list(others)
    problems: dict[int, list[Problem]] = {}
    for share in shared:
        if share.first >= len(models):
            continue  # another shard's model: that shard reports it
        model, other = models[share.first], claims[share.second]
        named = f"model {other.name!r} ({other.path})"
        if share.location == share.other:
            relation = f"this model's store is also the store of {named}"
        elif share.location.startswith(share.other + "/"):
            relation = f"this model's store lies inside the store of {named}"
        else:
            relation = f"the store of {named} lies inside this model's store"
        problems.setdefault(share.first, []).append(
            _store_problem(
                model,
                f"{relation} (assets.root, assets.directory and the steps' assets_root "
                "resolve there); two models must never share a store, so give each its own "
                "assets.directory",
            )
        )
    broken = [
        BrokenDefinition(models[i].path, tuple(p), models[i].spec.name) for i, p in problems.items()
    ]
    kept = tuple(m for i, m in enumerate(models) if i not in problems)
    sharing = {share.first for share in shared}
    others_kept = [f for i, f in enumerate(others, len(models)) if i not in sharing]
    everything = sorted([*catalog.broken, *broken], key=lambda b: str(b.path))
    return Catalog(kept, tuple(everything)), others_kept


def _resolve_data(
    catalog: Catalog,
    others: Sequence[ModelFacts],
    environ: Mapping[str, str],
    dags_folders: Sequence[Path],
    root: str | None,
) -> Catalog:
    """Models whose data URLs leave the allowed places, or reach a store or the DAGs folder.

    Checked across files, since no model may read or write inside any model's store (the
    stores of ``others``, another shard's models, too).
    """
    claims = [(m.spec.name, store_locations(m.spec, root)) for m in catalog.models]
    claims += [(f.name, f.stores) for f in others]
    places = claimed_places(environ, dags_folders, claims, root)
    broken = []
    kept = []
    for model in catalog.models:
        try:
            issues = location_issues(model.spec, places)
        except Exception as error:  # this model's problem, never the folder's
            broken.append(_unusable(model.path, error, model.spec.name))
            continue
        if not issues:
            kept.append(model)
            continue
        findings = [Finding(loc, "data_location", message) for loc, message in issues]
        problems = locate_findings(model.path, findings, environ)
        broken.append(BrokenDefinition(model.path, problems, model.spec.name))
    everything = sorted([*catalog.broken, *broken], key=lambda b: str(b.path))
    return Catalog(tuple(kept), tuple(everything))


def _store_problem(model: LoadedModel, message: str) -> Problem:
    data = read_yaml(model.path.read_bytes())
    assets = data.get("assets") if isinstance(data, dict) else None
    written = [k for k in ("directory", "root") if isinstance(assets, dict) and k in assets]
    loc: Loc = ("assets", written[0]) if written else ("name",)
    return _located(model.path, data, Finding(loc, "shared_store", message))
