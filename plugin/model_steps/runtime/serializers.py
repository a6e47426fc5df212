"""Saving a fitted step and loading it back: joblib, skops or the step's own functions.

A registry keyed by ``StepParameters.serializer``; a step's ``save``/``load`` pair wins over it.
Loading is the dangerous half (a joblib file is a pickle), so the store verifies every asset's
checksum before a serializer sees it, skops refuses types outside the allow-list, and ``save`` /
``load`` must be functions of the DAGs folder's own code (or ones the deployment listed).
"""

from __future__ import annotations

import importlib
import inspect
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from model_steps.definition.allowlist import is_allowed, is_own_code
from model_steps.errors import StepError, UntrustedTypeError
from model_steps.libraries import library
from model_steps.runtime.resolution import resolve_function
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from model_steps.definition.schema import Step

__all__ = [
    "SERIALIZERS",
    "CustomSerializer",
    "JoblibSerializer",
    "Serializer",
    "SkopsSerializer",
    "load_fitted",
    "serializer_for",
]


class Serializer(Protocol):
    """Turns a fitted object into bytes and back."""

    def save(self, fitted: Any) -> bytes:
        """The bytes stored as the step's asset."""

    def load(self, stream: IO[bytes]) -> Any:
        """The fitted object again, read from a verified local file (never whole in memory)."""


class JoblibSerializer:
    """joblib (pickle): handles any Python object; loading runs code, so trust the store."""

    def save(self, fitted: Any) -> bytes:
        """The joblib pickle of ``fitted``."""
        buffer = io.BytesIO()
        library("joblib").dump(fitted, buffer)
        return buffer.getvalue()

    def load(self, stream: IO[bytes]) -> Any:
        """The unpickled object."""
        return library("joblib").load(stream)


DATA_TYPE_PACKAGES = ("numpy", "scipy", "pandas")
"""Packages whose classes (arrays, dtypes, sparse matrices) a skops file may hold besides the
allowed packages' types; never their functions (``numpy.load``, ``pandas.read_pickle``)."""


@dataclass(frozen=True)
class SkopsSerializer:
    """skops: loads only types it trusts, plus those from allowed modules."""

    allow: AllowList

    def save(self, fitted: Any) -> bytes:
        """The skops archive of ``fitted``."""
        data: bytes = library("skops.io").dumps(fitted)
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """The object, refusing types from modules outside the allow-list.

        Raises:
            UntrustedTypeError: the archive names types from modules that are not allowed.
        """
        sio = library("skops.io")
        unknown = list(sio.get_untrusted_types(file=stream))
        refused = [name for name in unknown if not _trusted(name, self.allow)]
        if refused:
            raise UntrustedTypeError(
                f"the skops file holds types from modules that are not allowed imports: "
                f"{', '.join(refused)}; add their modules to MODEL_STEPS_ALLOWED_IMPORTS "
                "if you trust them",
                types=refused,
            )
        stream.seek(0)
        return sio.load(stream, trusted=unknown)


def _trusted(name: str, allow: AllowList) -> bool:
    """Whether a skops file may hold the type or function ``name`` (``module.Attribute``)."""
    if is_allowed(name, allow.packages) or is_own_code(name, allow):
        return True
    if not is_allowed(name, DATA_TYPE_PACKAGES):
        return False
    module, _, attribute = name.rpartition(".")
    try:
        return inspect.isclass(getattr(importlib.import_module(module), attribute, None))
    except ImportError:
        return False


@dataclass(frozen=True)
class CustomSerializer:
    """The step's own ``save`` (``f(obj) -> bytes``) and ``load`` (``f(bytes) -> obj``)."""

    save_ref: str
    save_function: Callable[[Any], Any]
    load_function: Callable[[bytes], Any]

    @classmethod
    def of(cls, save: str, load: str, allow: AllowList) -> CustomSerializer:
        """Both functions, resolved and checked now: before any data is read or unpickled."""
        return cls(
            save, resolve_function(save, "save", allow), resolve_function(load, "load", allow)
        )

    def save(self, fitted: Any) -> bytes:
        """What ``save`` returns, which must be bytes."""
        data = self.save_function(fitted)
        if not isinstance(data, bytes):
            raise StepError(f"{self.save_ref!r} returned {type(data).__name__}, not bytes")
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """What ``load`` makes of the bytes."""
        return self.load_function(stream.read())


SERIALIZERS: Mapping[str, Callable[[AllowList], Serializer]] = {
    "joblib": lambda allow: JoblibSerializer(),
    "skops": SkopsSerializer,
}
"""``StepParameters.serializer`` -> the serializer, given the allow-list."""


def serializer_for(step: Step, allow: AllowList) -> Serializer:
    """The step's serializer: its ``save``/``load`` pair (resolved now), else ``serializer``."""
    params = step.parameters
    if params.save is not None and params.load is not None:
        return CustomSerializer.of(params.save, params.load, allow)
    return SERIALIZERS[params.serializer](allow)


def load_fitted(stream: IO[bytes], step: Step, allow: AllowList) -> Any:
    """The fitted object from a step's asset file, read by its serializer."""
    return serializer_for(step, allow).load(stream)
