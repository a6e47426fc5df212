"""Which types and functions a skops file may make its loader build, judged by what they are.

skops names everything it will construct by a path string, ``module.Name``, written by whoever
wrote the file. Trusting the string would trust the writer: ``sklearn.utils._testing.check_output``
is ``subprocess.check_output`` reached through a module that imported it, and skops calls what a
``ConstructorFromReduceNode`` names with the arguments the file holds. So every name skops does
not trust by itself is resolved to the object it really is and judged by that:

- nothing is imported outside the allowed packages, the data packages (numpy, scipy, pandas) and
  the DAGs folder's own modules, nor a library's test module (``tests``, ``_testing``...);
- the object's own home (``__module__`` and ``__qualname__``) must be the very path the file
  gives, so an imported or re-exported name cannot borrow an allowed module's path;
- a library class must be model-like (it has ``fit``, ``predict`` or ``transform``: an estimator,
  or the compiled trees inside one, which live in private modules such as ``sklearn.tree._tree``)
  from an allowed package, or data-like (numpy scalars, dtypes, arrays and random generators,
  scipy sparse matrices, pandas frames, indexes and dtypes); a private class name never passes;
- a function must be the deployment's own code (judged by the file it is defined in) or listed
  in ``MODEL_STEPS_ALLOWED_FUNCTIONS``: a library's function (``numpy.load``, ``builtins.eval``,
  ``os.system``) never is.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from typing import Any

from model_steps.definition.allowlist import is_allowed, is_own_code
from model_steps.errors import ImportRefusedError, MissingModuleError
from model_steps.runtime.resolution import check_own_file, import_named
from model_steps.settings import AllowList

__all__ = ["DATA_TYPE_PACKAGES", "type_problem"]

DATA_TYPE_PACKAGES = ("numpy", "scipy", "pandas")
"""Packages whose data classes (arrays, dtypes, sparse matrices) a skops file may hold besides
the allowed packages' models; never their functions (``numpy.load``, ``pandas.read_pickle``)."""
MODEL_METHODS = ("fit", "predict", "transform")
"""A library class with one of these is a model or a part of one (a fitted tree)."""
_TEST_CODE = re.compile(r"_*(tests?|testing|conftest)\Z")
_MISSING = object()


def type_problem(name: str, allow: AllowList) -> str | None:
    """Why a skops file may not hold ``name`` (``module.Name``), else None.

    Only modules of the allowed packages, the data packages and the DAGs folder are imported to
    find out; a name anywhere else is refused by its text alone.
    """
    parts = name.split(".")
    own = is_own_code(name, allow) and parts[0] not in sys.stdlib_module_names
    library = is_allowed(name, allow.packages)
    if not (own or library or is_allowed(name, DATA_TYPE_PACKAGES)):
        return f"module {parts[0]!r} is not an allowed import"
    if not own and (test := next((p for p in parts if _TEST_CODE.match(p)), None)):
        return f"{test!r} is test code, not part of a model"
    found = _resolve(parts, allow)
    if found is _MISSING:
        return "no such type or function is installed here"
    home = f"{getattr(found, '__module__', None)}.{getattr(found, '__qualname__', None)}"
    if home != name:
        return f"it is {_describe(found, home)}, not defined where the file says"
    if inspect.isclass(found):
        return _class_problem(found, own, library, allow)
    return _function_problem(found, name, own, allow)


def _resolve(parts: list[str], allow: AllowList) -> Any:
    """The object a dotted path names, importing submodules only along the path itself."""
    try:
        found: Any = import_named(parts[0], allow)
        for index, part in enumerate(parts[1:], start=2):
            attribute = getattr(found, part, _MISSING)
            if attribute is _MISSING and inspect.ismodule(found):
                attribute = importlib.import_module(".".join(parts[:index]))
            if attribute is _MISSING:
                return _MISSING
            found = attribute
    except (ImportError, MissingModuleError):
        return _MISSING
    return found


def _class_problem(cls: type, own: bool, library: bool, allow: AllowList) -> str | None:
    """Why a skops file may not build instances of ``cls`` (found where the file says)."""
    if own:
        return _own_problem(cls, allow)
    private = next((p for p in cls.__qualname__.split(".") if p.startswith("_")), None)
    if private:
        return f"{private!r} is a private class"
    if library and any(callable(getattr(cls, method, None)) for method in MODEL_METHODS):
        return None
    if _is_data_type(cls):
        return None
    return "a class that is neither a model (fit, predict or transform) nor a data type"


def _function_problem(found: Any, name: str, own: bool, allow: AllowList) -> str | None:
    """Why a skops file may not hand out the function (or other object) ``found``."""
    module, _, attribute = name.rpartition(".")
    if f"{module}:{attribute}" in allow.functions:
        return None
    if own and inspect.isfunction(found):
        return _own_problem(found, allow)
    return (
        f"it is {_describe(found, name)}: a skops file may name only functions of the DAGs "
        "folder's own code or ones listed in MODEL_STEPS_ALLOWED_FUNCTIONS"
    )


def _own_problem(found: Any, allow: AllowList) -> str | None:
    try:
        check_own_file(found, f"{found.__module__}:{found.__qualname__}", allow)
    except ImportRefusedError as error:
        return str(error)
    return None


def _is_data_type(cls: type) -> bool:
    """Whether ``cls`` holds data: a numpy, scipy sparse or pandas array, scalar or dtype."""
    bases: list[type] = []
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        random = numpy.random
        bases += [numpy.generic, numpy.dtype, numpy.ndarray]
        bases += [random.BitGenerator, random.Generator, random.RandomState]
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None:
        bases += [sparse.spmatrix, sparse.sparray]
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        api = pandas.api.extensions
        bases += [pandas.DataFrame, pandas.Series, pandas.Index]
        bases += [api.ExtensionArray, api.ExtensionDtype]
    return issubclass(cls, tuple(bases)) if bases else False


def _describe(found: Any, home: str) -> str:
    if inspect.ismodule(found):
        return f"the module {found.__name__}"
    if inspect.isclass(found):
        return f"the class {home}"
    if callable(found):
        return f"the function {home}"
    return f"a {type(found).__name__} object"
