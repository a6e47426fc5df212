"""YAML that remembers where each key and item came from.

Validation errors must name the line of the offending key, for every error and not only syntax
errors. libyaml (``CSafeLoader``) scans and parses in C; only the final construction runs in
Python, where we keep each mapping's key positions and each sequence's item positions beside the
values. The same pass refuses duplicate keys, which plain PyYAML silently lets the last one win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Position", "SourceError", "has_child", "locate", "read_yaml"]


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


class PositionedMap(dict[Any, Any]):
    """A mapping that knows where it starts and where each of its keys is."""

    __slots__ = ("key_positions", "start")

    def __init__(self, start: Position) -> None:
        super().__init__()
        self.start = start
        self.key_positions: dict[Any, Position] = {}


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
    _refuse_duplicate_keys(node)
    loader.flatten_mapping(node)
    mapping = PositionedMap(Position.of(node.start_mark))
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise SourceError(Position.of(key_node.start_mark), "a key must be a plain value")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_positions[key] = Position.of(key_node.start_mark)
    return mapping


def _refuse_duplicate_keys(node: yaml.MappingNode) -> None:
    """A key written twice is a mistake: report the second with the line of the first."""
    first_seen: dict[str, yaml.Mark] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
            continue
        if key_node.value in first_seen:
            first_line = first_seen[key_node.value].line + 1
            raise SourceError(
                Position.of(key_node.start_mark),
                f"duplicate key: {key_node.value!r} is already set on line {first_line}",
                field=key_node.value,
            )
        first_seen[key_node.value] = key_node.start_mark


def _construct_list(loader: _PositionLoader, node: yaml.SequenceNode) -> PositionedList:
    items = PositionedList(Position.of(node.start_mark))
    for item_node in node.value:
        items.append(loader.construct_object(item_node, deep=True))
        items.item_positions.append(Position.of(item_node.start_mark))
    return items


_PositionLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_PositionLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


def read_yaml(text: str | bytes) -> Any:
    """Parse one YAML document safely; mappings and lists come back positioned.

    Raises:
        SourceError: on a syntax error, a duplicate key or more than one document.
    """
    loader = _PositionLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        raise SourceError(Position.of(mark), f"YAML syntax error: {problem}{context}") from error
    except yaml.YAMLError as error:
        raise SourceError(Position(1, 1), f"YAML error: {error}") from error
    finally:
        loader.dispose()


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
