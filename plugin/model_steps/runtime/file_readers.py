"""A step's class is a model, never an object that opens files or connections from its arguments.

``lightgbm.Booster(model_file=<any path>)`` is a class in an allowed package, with a ``predict``
method; given ``methods: {fit: predict}`` it passed every name check and read whatever file the
worker could, another model's store included. Values cannot be judged one by one (a path is just
text), so such classes are refused whatever their arguments, by what the resolved class *is*:

- a class listed in :data:`FILE_READING_CLASSES` (boosters and datasets loaded from files,
  trackers that open sockets), or a subclass of one, however it is re-exported;
- any class whose constructor takes an argument named like a file, a path, a URL or a
  connection (:data:`FILE_ARGUMENT`): ``model_file``, ``model_str``, ``fname``, ``cache``,
  ``host``...;
- a class the deployment lists in ``MODEL_STEPS_REFUSED_CLASSES`` (``[model_steps]
  refused_classes``), ``package.module:Class`` entries, with their subclasses.

scikit-learn's ``memory`` and the text vectorizers' ``input`` are file-reaching arguments of
otherwise useful estimators: their values are judged instead
(:data:`model_steps.definition.allowlist.RISKY_INIT`). ``tests/unit/test_file_readers.py`` scans
every class of the allowed packages so that a library release adding another file reader fails
the suite until it is classified here.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Sequence

__all__ = ["FILE_ARGUMENT", "FILE_READING_CLASSES", "file_reading_problem"]

FILE_READING_CLASSES = (
    "lightgbm.basic:Booster",
    "lightgbm.basic:Dataset",
    "lightgbm.engine:CVBooster",
    "xgboost.core:Booster",
    "xgboost.core:DMatrix",
    "xgboost.core:DataIter",
    "xgboost.tracker:RabitTracker",
    "xgboost.callback:TrainingCheckPoint",
    "xgboost.collective:Config",
)
"""Classes of the allowed packages that load a model or data from a path, a URI or a model
string, write checkpoints, or open sockets: refused with every subclass. ``Dataset`` and
``DMatrix`` take a file name in the same ``data`` argument that holds an array, so their
argument names alone would not give them away."""

FILE_ARGUMENT = re.compile(
    r"(model_file|model_str|model_path|fname|filename|files?|paths?|filepath|file_path"
    r"|uri|url|directory|cache|cache_prefix|checkpoint|host|host_ip|port|socket|connection"
    r"|.+_(file|filename|path|dir|uri|url|host|host_ip|port))"
)
"""Constructor argument names that say the object reads or writes a file or opens a
connection; matched in full against each argument of the class's ``__init__``."""


def file_reading_problem(cls: type, refused: Sequence[str] = ()) -> str | None:
    """Why ``cls`` may not be a step's class (it opens files or connections); None if it may.

    ``refused`` are the deployment's own ``package.module:Class`` entries; an entry whose
    package is not installed refuses nothing.
    """
    name = f"{cls.__module__}:{cls.__qualname__}"
    for reference, known in _classes((*FILE_READING_CLASSES, *refused)):
        if issubclass(cls, known):
            what = name if known is cls else f"{name} derives from {reference}, which"
            return (
                f"{what} opens files or connections from its arguments, so it is refused as a "
                "step's class: a step's class is a model, and data and assets reach it "
                "through the step's input, output and assets_identifier"
            )
    arguments = [a for a in _init_arguments(cls) if FILE_ARGUMENT.fullmatch(a)]
    if arguments:
        return (
            f"{name} takes {', '.join(map(repr, arguments))}, which name a file, a path or a "
            "connection: a class that opens what its arguments name is refused as a step's "
            "class; data and assets reach a step through its input, output and "
            "assets_identifier"
        )
    return None


def _init_arguments(cls: type) -> list[str]:
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: nothing named
        return []
    return [
        p.name
        for p in parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _classes(references: Sequence[str]) -> list[tuple[str, type]]:
    """The referenced classes whose modules are imported already.

    A class can only derive from a class whose module is imported, so nothing is imported here:
    checking a scikit-learn class never loads xgboost.
    """
    found = []
    for reference in references:
        module, _, name = reference.partition(":")
        cls = getattr(sys.modules.get(module), name, None)
        if inspect.isclass(cls):
            found.append((reference, cls))
    return found
