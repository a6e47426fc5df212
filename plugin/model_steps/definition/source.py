"""YAML that remembers where each key and item came from.

Validation errors must name the line of the offending key, for every error and not only syntax
errors. libyaml (``CSafeLoader``) scans and parses in C; only the final construction runs in
Python, where we keep each mapping's key positions and each sequence's item positions beside the
values. The same pass records duplicate keys, for which plain PyYAML silently keeps the last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "Duplicate",
    "NeedsPositions",
    "Position",
    "SourceError",
    "duplicates",
    "has_child",
    "locate",
    "read_plain",
    "read_yaml",
]


MAX_FILE_BYTES = 1024 * 1024
"""A definition file is at most 1 MiB; the largest example is under 10 KB."""
MAX_NODES = 100_000
"""Values a document may expand to, counting every alias as the copy it stands for: a 1 KB
file of nine levels of nine aliases stands for 387 million values."""
MAX_DEPTH = 64
"""Levels of nested mappings and lists; a definition needs about ten."""


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a source file."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark | None) -> Position:
        """Convert libyaml's 0-based mark."""
        return cls(mark.line + 1, mark.column + 1) if mark else cls(1, 1)


class SourceError(Exception):
    """The text is not usable YAML; carries the position and a message for the user."""

    def __init__(self, position: Position, message: str, field: str = "") -> None:
        super().__init__(message)
        self.position = position
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Duplicate:
    """A key written a second time in the same mapping."""

    key: str
    position: Position
    first: Position


class PositionedMap(dict[Any, Any]):
    """A mapping that knows where it starts, where each of its keys is, and repeated keys."""

    __slots__ = ("duplicates", "key_positions", "start")

    def __init__(self, start: Position) -> None:
        super().__init__()
        self.start = start
        self.key_positions: dict[Any, Position] = {}
        self.duplicates: list[Duplicate] = []


class PositionedList(list[Any]):
    """A sequence that knows where it starts and where each item is."""

    __slots__ = ("item_positions", "start")

    def __init__(self, start: Position) -> None:
        super().__init__()
        self.start = start
        self.item_positions: list[Position] = []


class _PositionLoader(yaml.CSafeLoader):
    """libyaml's safe loader, constructing positioned containers."""


def _construct_map(loader: _PositionLoader, node: yaml.MappingNode) -> PositionedMap:
    duplicates = _duplicate_keys(node)
    loader.flatten_mapping(node)
    mapping = PositionedMap(Position.of(node.start_mark))
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise SourceError(Position.of(key_node.start_mark), "a key must be a plain value")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_positions[key] = Position.of(key_node.start_mark)
    mapping.duplicates = duplicates
    return mapping


def _duplicate_keys(node: yaml.MappingNode) -> list[Duplicate]:
    """Keys written twice in one mapping (YAML would silently keep the last)."""
    first_seen: dict[str, yaml.Mark] = {}
    duplicates: list[Duplicate] = []
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
            continue
        if key_node.value in first_seen:
            first = Position.of(first_seen[key_node.value])
            duplicates.append(Duplicate(key_node.value, Position.of(key_node.start_mark), first))
        first_seen.setdefault(key_node.value, key_node.start_mark)
    return duplicates


def _construct_list(loader: _PositionLoader, node: yaml.SequenceNode) -> PositionedList:
    items = PositionedList(Position.of(node.start_mark))
    for item_node in node.value:
        items.append(loader.construct_object(item_node, deep=True))
        items.item_positions.append(Position.of(item_node.start_mark))
    return items


_PositionLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_PositionLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


def _construct_text(loader: _PositionLoader, node: yaml.ScalarNode) -> str:
    """Keep dates as text, for the schema to parse.

    The schema reports an impossible date at its field, where PyYAML would raise a bare
    ValueError from deep inside the parser.
    """
    return str(loader.construct_scalar(node))


_PositionLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)


class NeedsPositions(Exception):
    """The text has something only the positioned reader reports well (or is not YAML)."""


class _PlainLoader(yaml.CSafeLoader):
    """libyaml's safe loader building plain containers, with dates kept as text."""


def _construct_plain_map(loader: _PlainLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
    if len(keys) != len(node.value) or len(set(keys)) != len(keys) or "<<" in keys:
        raise NeedsPositions  # duplicate, merge or complex keys: let read_yaml report them
    return {
        loader.construct_object(key, deep=True): loader.construct_object(value, deep=True)
        for key, value in node.value
    }


_PlainLoader.add_constructor("tag:yaml.org,2002:map", _construct_plain_map)
_PlainLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)


def _bounded(loader: yaml.CSafeLoader) -> Any:
    """Compose the document, check its expanded size and depth, then construct it.

    libyaml composes aliases as shared nodes, so composing costs what the text costs; what the
    document stands for (every alias expanded, as validation walks it) is counted here over the
    node graph, each node once, before any Python object is built.

    Raises:
        SourceError: the document expands past :data:`MAX_NODES` values, nests deeper than
            :data:`MAX_DEPTH` levels, or holds an alias to a node that contains it.
    """
    node = loader.get_single_node()
    if node is None:
        return None
    _check_size(node)
    return loader.construct_document(node)


def _check_size(root: yaml.Node) -> None:
    _measure(root, 1, {})


_OPEN = (-1, -1)
"""Marks a collection being measured: meeting it again is an alias to a value holding it."""


def _measure(node: yaml.Node, level: int, seen: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """The values ``node`` expands to and its height, each collection measured once.

    Recursion is bounded by :data:`MAX_DEPTH`; scalars, most of a document, cost one check.
    """
    if isinstance(node, yaml.ScalarNode):
        return 1, 1
    key = id(node)
    known = seen.get(key)
    if known is _OPEN:
        raise SourceError(
            Position.of(node.start_mark), "an alias refers to a value that contains it"
        )
    if known is None:
        if level > MAX_DEPTH:
            raise SourceError(
                Position.of(node.start_mark),
                f"values nest more than {MAX_DEPTH} levels deep here; a definition needs far fewer",
            )
        seen[key] = _OPEN
        children = (
            node.value
            if isinstance(node, yaml.SequenceNode)
            else [part for pair in node.value for part in pair]
        )
        size, height = 1, 1
        for child in children:
            child_size, child_height = _measure(child, level + 1, seen)
            size += child_size
            height = max(height, child_height + 1)
        known = seen[key] = (size, height)
    size, height = known
    if size > MAX_NODES:
        raise SourceError(
            Position.of(node.start_mark),
            f"this value expands to more than {MAX_NODES} values (aliases count once per use); "
            "a definition is far smaller, so it is refused",
        )
    if level + height - 1 > MAX_DEPTH:
        raise SourceError(
            Position.of(node.start_mark),
            f"values nest more than {MAX_DEPTH} levels deep here; a definition needs far fewer",
        )
    return known


def read_plain(text: str | bytes) -> Any:
    """Parse one YAML document into plain containers, at about half the cost of read_yaml.

    Positions are only needed to place error messages, so valid files, nearly all of them, skip
    recording them; the loader re-reads a file with :func:`read_yaml` when it has problems.

    Raises:
        NeedsPositions: the text is not valid YAML or has duplicate or merge keys.
    """
    if len(text) > MAX_FILE_BYTES:
        raise NeedsPositions
    loader = _PlainLoader(text)
    try:
        return _bounded(loader)
    except (yaml.YAMLError, TypeError, SourceError) as error:
        raise NeedsPositions from error
    finally:
        loader.dispose()


def read_yaml(text: str | bytes) -> Any:
    """Parse one YAML document safely; mappings and lists come back positioned.

    Raises:
        SourceError: on a syntax error or more than one document.
    """
    if len(text) > MAX_FILE_BYTES:
        raise SourceError(
            Position(1, 1),
            f"the file is {len(text)} bytes; a definition is at most {MAX_FILE_BYTES} bytes",
        )
    loader = _PositionLoader(text)
    try:
        return _bounded(loader)
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error, text) from error
    except yaml.YAMLError as error:
        raise SourceError(Position(1, 1), f"YAML error: {error}") from error
    finally:
        loader.dispose()


def _syntax_error(error: yaml.MarkedYAMLError, text: str | bytes) -> SourceError:
    """Say what is wrong in words, and where the construct that broke began."""
    position = Position.of(error.problem_mark or error.context_mark)
    problem = error.problem or "invalid YAML"
    if "another document" in problem:
        return SourceError(position, "a file holds one model: a second YAML document starts here")
    if _character_at(text, position) == "\t":
        return SourceError(position, "YAML syntax error: tabs cannot indent YAML; use spaces")
    context = ""
    if error.context and error.context_mark and error.context_mark != error.problem_mark:
        start = Position.of(error.context_mark)
        context = f" ({error.context} that starts at line {start.line}, column {start.column})"
    elif error.context:
        context = f" ({error.context})"
    return SourceError(position, f"YAML syntax error: {problem}{context}")


def _character_at(text: str | bytes, position: Position) -> str:
    lines = (text.decode(errors="replace") if isinstance(text, bytes) else text).splitlines()
    if position.line > len(lines) or position.column > len(lines[position.line - 1]):
        return ""
    return lines[position.line - 1][position.column - 1]


def duplicates(
    data: Any, loc: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], Duplicate]]:
    """Every repeated key under ``data``, with the field path of the mapping holding it."""
    found: list[tuple[tuple[str | int, ...], Duplicate]] = []
    if isinstance(data, PositionedMap):
        found.extend(((*loc, d.key), d) for d in data.duplicates)
        for key, value in data.items():
            found.extend(duplicates(value, (*loc, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(duplicates(value, (*loc, index)))
    return found


def locate(data: Any, loc: Sequence[str | int]) -> Position:
    """The position of the deepest part of ``loc`` that exists in ``data``.

    A missing field points at the mapping that should hold it; a bad value at its key.
    """
    position = getattr(data, "start", Position(1, 1))
    node = data
    for part in loc:
        if not has_child(node, part):
            break
        if isinstance(node, PositionedMap):
            position = node.key_positions[part]
        elif isinstance(node, PositionedList):
            position = node.item_positions[int(part)]
        node = node[part]
    return position


def has_child(node: Any, part: str | int) -> bool:
    """Whether ``node[part]`` is something the file holds (a key of a mapping, an item)."""
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
