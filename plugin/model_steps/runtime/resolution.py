"""What a name in a definition resolves to: import it, then check what it is.

The allow-list (:mod:`model_steps.definition.allowlist`) judges names before anything is
imported; this module imports them and checks the object itself, because a module path alone
says little: ``pandas:eval`` is a function that evaluates expressions, not an estimator class,
and an empty ``logging.py`` in the DAGs folder does not make the standard ``logging`` module the
deployment's own code. So:

- a ``class`` must be a class, defined in an allowed package (or in a file of the DAGs folder),
  that has every method the step will call;
- a function must be a Python function defined in a file under the DAGs folder (checked by the
  file its code lives in, so a standard or installed module of the same name cannot pass), in
  ``sklearn.metrics`` for a metric, or be one the deployment listed exactly.

Train and infer tasks, real-time handlers and ``model-steps validate`` all go through here, so a
definition that skipped validation is refused all the same when it runs.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from model_steps.definition.allowlist import (
    METRICS_MODULE,
    ROLES,
    Purpose,
    init_problems,
    is_allowed,
    is_own_code,
    method_problem,
    reference_problem,
    split_reference,
)
from model_steps.errors import (
    ImportRefusedError,
    MissingAttributeError,
    MissingModuleError,
    closest,
)
from model_steps.libraries import install_hint
from model_steps.runtime.file_readers import file_reading_problem
from model_steps.runtime.own_modules import prepare_own_module
from model_steps.settings import AllowList

INSTALLED_PATHS = ("stdlib", "platstdlib", "purelib", "platlib")
"""The ``sysconfig`` paths whose modules an error calls installed."""

__all__ = [
    "check_own_file",
    "import_named",
    "public_module",
    "refuse_init",
    "require_methods",
    "resolve_class",
    "resolve_function",
]


def resolve_class(package: str, name: str, methods: Sequence[str], allow: AllowList) -> type:
    """The class ``package.name``, once it proves to be one with every method in ``methods``.

    Raises:
        ImportRefusedError: the name is not allowed, is not a class, or is defined elsewhere.
        MissingModuleError: the module is not installed (or not in the DAGs folder).
        MissingAttributeError: no such class, or the class lacks a method (with near misses).
    """
    reference = f"{package}:{name}"
    _refuse(reference_problem(package, name, "class", allow), package, allow)
    library = not is_own_code(package, allow)
    for method in methods:
        _refuse(method_problem(method, library), package, allow)
    found = _attribute(import_named(package, allow), name, reference, inspect.isclass)
    if not inspect.isclass(found):
        raise ImportRefusedError(
            f"{reference} is {_describe(found)}, not a class: a step's class must be a class "
            "with the methods the step calls (fit, and transform or predict)",
            module=package,
            allowed=allow.packages,
        )
    if library:
        origin = found.__module__
        if not is_allowed(origin, allow.packages):
            origin = public_module(found)
            raise ImportRefusedError(
                f"{reference} is defined in {origin!r}, which is not an allowed import: a "
                f"step's class may come from {', '.join(allow.packages)} or the DAGs folder",
                module=origin,
                allowed=allow.packages,
            )
        _refuse(file_reading_problem(found, allow.refused_classes), package, allow)
    else:
        check_own_file(found, reference, allow)
    require_methods(found, methods)
    return found


def refuse_init(module: str, init: Mapping[str, Any], allow: AllowList) -> None:
    """Refuse init values that make a library class open a file, a pickle cache or a peer.

    Checked on the values a run rendered, so a template cannot bring back what a literal may
    not say; ``module`` is the step's package, and again the module the class is defined in
    (a LightGBM class another package re-exports still writes LightGBM's parameter text). The
    DAGs folder's own classes take what their code decides.

    Raises:
        ImportRefusedError: the first refused argument, and why.
    """
    if is_own_code(module, allow):
        return
    for _, problem in init_problems(module, init):
        _refuse(problem, module, allow)


def require_methods(cls: type, methods: Sequence[str]) -> None:
    """Raise unless ``cls`` has every method in ``methods``.

    Raises:
        MissingAttributeError: the first missing method, with the class's near misses.
    """
    for method in methods:
        if not callable(getattr(cls, method, None)):
            public = [a for a in dir(cls) if not a.startswith("_")]
            raise MissingAttributeError(
                f"{cls.__name__} has no method {method!r}",
                suggestions=closest(method, [a for a in public if callable(getattr(cls, a))]),
            )


def resolve_function(reference: str, purpose: Purpose, allow: AllowList) -> Callable[..., Any]:
    """The function ``reference`` names, once it proves to be one ``purpose`` may use.

    Raises:
        ImportRefusedError: the name is not allowed, is not a Python function, or its code
            lives outside the DAGs folder (for a DAGs-folder module's name).
        MissingModuleError: the module is not installed (or not in the DAGs folder).
        MissingAttributeError: the module has no such function (with near misses).
    """
    module_name, attribute = split_reference(reference)
    _refuse(reference_problem(module_name, attribute, purpose, allow), module_name, allow)
    found = _attribute(import_named(module_name, allow), attribute, reference, inspect.isfunction)
    function: Callable[..., Any] = found
    if f"{module_name}:{attribute}" in allow.functions and callable(function):
        return function  # the deployment vouched for this one, whatever kind of callable it is
    if not inspect.isfunction(found):
        raise ImportRefusedError(
            f"{reference} is {_describe(found)}, not a Python function: {ROLES[purpose]} must "
            "be a function defined in the DAGs folder's own code"
            + (" or in sklearn.metrics" if purpose == "metric" else ""),
            module=module_name,
            allowed=allow.packages,
        )
    if is_own_code(module_name, allow):
        check_own_file(found, reference, allow)
    elif not is_allowed(found.__module__, (METRICS_MODULE,)):
        raise ImportRefusedError(
            f"{reference} is defined in {found.__module__!r}, not in sklearn.metrics",
            module=found.__module__,
            allowed=allow.packages,
        )
    return function


def public_module(found: Any) -> str:
    """The module a user imports ``found`` from: its defining module without private tails.

    Python 3.13 defines ``pathlib.Path`` in ``pathlib._local``; a message naming that module
    would differ by Python version and name a module nobody imports. A trailing ``_private``
    part is dropped while the parent module exposes the very same object.
    """
    parts = str(found.__module__).split(".")
    while len(parts) > 1 and parts[-1].startswith("_"):
        parent = sys.modules.get(".".join(parts[:-1]))
        if parent is None or getattr(parent, getattr(found, "__name__", ""), None) is not found:
            break
        parts.pop()
    return ".".join(parts)


def _describe(obj: Any) -> str:
    """What kind of object ``obj`` is, in words an error can use."""
    if isinstance(obj, ModuleType):
        return "a module"
    if inspect.isclass(obj):
        return "a class"
    if inspect.isfunction(obj):
        return "a function"
    if inspect.isbuiltin(obj):
        return "a built-in function"
    return f"a {type(obj).__name__} object"


def _refuse(problem: str | None, module: str, allow: AllowList) -> None:
    if problem:
        raise ImportRefusedError(problem, module=module, allowed=allow.packages)


def import_named(module: str, allow: AllowList) -> ModuleType:
    """Import ``module``; the DAGs folder joins the import path for its own modules."""
    own = is_own_code(module, allow)
    if own:  # the folder's file, whatever this process imported before
        prepare_own_module(module.partition(".")[0], allow.code_folders)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or module
        parent = missing.rpartition(".")[0]
        if parent:  # the package is there, the module in it is not: name its siblings
            raise MissingModuleError(
                f"cannot import {module!r}: package {parent!r} has no module {missing!r}",
                module=missing,
                suggestions=closest(missing, _submodules(parent)),
            ) from error
        where = "in the DAGs folder" if own else f"here ({install_hint(missing)})"
        raise MissingModuleError(
            f"cannot import {module!r}: no module named {missing!r} {where}", module=missing
        ) from error


def _submodules(package: str) -> list[str]:
    """The public modules of an imported package, by their full names."""
    path = getattr(sys.modules.get(package), "__path__", None) or []
    return [
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(path)
        if not info.name.startswith("_")
    ]


def _attribute(module: ModuleType, name: str, reference: str, kind: Callable[[Any], bool]) -> Any:
    """``module.name``, or an error naming the module's public names of the wanted kind."""
    if hasattr(module, name):
        return getattr(module, name)
    public = [n for n in dir(module) if not n.startswith("_") and kind(getattr(module, n))]
    raise MissingAttributeError(
        f"module {module.__name__!r} has no {'class' if kind is inspect.isclass else 'function'} "
        f"{name!r}",
        suggestions=closest(name, public),
    )


def check_own_file(found: Any, reference: str, allow: AllowList) -> None:
    """Refuse an object of a DAGs-folder module's name whose code lives in no DAGs-folder file.

    The file is what counts: ``joblib.py`` in the DAGs folder names the module ``joblib``,
    yet Python imports the installed one, and ``from os import system`` in a DAGs-folder file
    hands out code that file does not hold.
    """
    folders = [Path(os.path.realpath(folder)) for folder in allow.code_folders]

    def inside(file: str | None) -> bool:
        return file is not None and any(
            Path(os.path.realpath(file)).is_relative_to(folder) for folder in folders
        )

    top = reference.partition(":")[0].partition(".")[0]
    imported = getattr(sys.modules.get(top), "__file__", None)
    if not inside(imported):
        raise ImportRefusedError(
            f"{reference}: Python imports {_imported(top, imported)}, not the DAGs folder's "
            f"{top!r}, so nothing in it is the deployment's code; rename the DAGs folder's one",
            module=top,
            allowed=allow.packages,
        )
    if not inside(_defining_file(found)):
        origin = getattr(found, "__module__", None) or "an unknown module"
        raise ImportRefusedError(
            f"{reference} is defined in {origin!r}, outside the DAGs folder's files: only code "
            "written in the DAGs folder may be named through its modules",
            module=str(origin),
            allowed=allow.packages,
        )


def _imported(top: str, file: str | None) -> str:
    """The module ``top`` Python imports, in words: installed, or the file it came from."""
    paths = sysconfig.get_paths()
    homes = [Path(os.path.realpath(paths[key])) for key in INSTALLED_PATHS]
    if file is None or any(Path(os.path.realpath(file)).is_relative_to(h) for h in homes):
        return f"the installed module {top!r}"
    return f"{top!r} from {file}"


def _defining_file(found: Any) -> str | None:
    """The file holding a function's code, or a class's module file; None for built-ins.

    A decorated function counts where its own code is (``__wrapped__``), not its wrapper's.
    """
    if inspect.isfunction(found):
        found = inspect.unwrap(found)
    code = getattr(found, "__code__", None)
    if code is not None:
        return str(code.co_filename)
    module = sys.modules.get(getattr(found, "__module__", None) or "")
    file = getattr(module, "__file__", None)
    return str(file) if file else None
