"""Saving a fitted step and loading it back: joblib, skops, a library's format or your own.

A registry keyed by :attr:`Step.serializer` (the ``serializer`` a step names, else the one its
asset's extension implies; a step's ``save``/``load`` pair wins over both).
Loading is the dangerous half (a joblib file is a pickle), so the store verifies every asset's
checksum before a serializer sees it, and skops refuses types outside the allow-list.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from model_steps.definition.allowlist import import_object, is_allowed
from model_steps.errors import StepError, UntrustedTypeError
from model_steps.libraries import library
from model_steps.runtime.native import LightGBMSerializer, XGBoostSerializer

if TYPE_CHECKING:
    from model_steps.definition.schema import Step

__all__ = [
    "SERIALIZERS",
    "CustomSerializer",
    "JoblibSerializer",
    "Serializer",
    "SkopsSerializer",
    "load_fitted",
    "quiet_type_lookup",
    "save_fitted",
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


@dataclass(frozen=True)
class SkopsSerializer:
    """skops: loads only types it trusts, plus those from allowed modules."""

    allowed: Sequence[str]

    def save(self, fitted: Any) -> bytes:
        """The skops archive of ``fitted``."""
        quiet_type_lookup()
        data: bytes = library("skops.io").dumps(fitted)
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """The object, refusing types from modules outside the allow-list.

        Raises:
            UntrustedTypeError: the archive names types from modules that are not allowed.
        """
        sio = library("skops.io")
        quiet_type_lookup()
        unknown = list(sio.get_untrusted_types(file=stream))
        refused = [name for name in unknown if not is_allowed(name, self.allowed)]
        if refused:
            raise UntrustedTypeError(
                f"the skops file holds types from modules that are not allowed imports: "
                f"{', '.join(refused)}; add their modules to MODEL_STEPS_ALLOWED_IMPORTS "
                "if you trust them",
                types=refused,
            )
        stream.seek(0)
        return sio.load(stream, trusted=unknown)


def quiet_type_lookup() -> None:
    """Ignore the FutureWarnings skops' type lookup provokes from other modules' shims.

    To name a type without ``__module__`` (a numpy ufunc), skops reads that name from every
    loaded module; in a process that loaded Airflow each read of a deprecated alias warns, some
    1,150 lines per load. Those warnings are attributed to skops' lookup module (the caller of
    the shim), so a filter on exactly that module hides them and nothing else: a warning raised
    by any other code, skops' own included, still shows. Added for the process rather than
    around each call, since ``catch_warnings`` is not thread-safe: another thread leaving its
    own ``catch_warnings`` block puts back the filters it saw on entry. A handler therefore
    also adds it when it is created, before its threads start.
    """
    warnings.filterwarnings("ignore", category=FutureWarning, module=SKOPS_TYPE_LOOKUP)


SKOPS_TYPE_LOOKUP = r"skops\.io\._utils\Z"
"""The module whose attribute reads of other modules provoke their deprecation warnings."""


@dataclass(frozen=True)
class CustomSerializer:
    """The step's own ``save`` (``f(obj) -> bytes``) and ``load`` (``f(bytes) -> obj``)."""

    save_ref: str
    load_ref: str
    allowed: Sequence[str]

    def save(self, fitted: Any) -> bytes:
        """What ``save`` returns, which must be bytes."""
        data = import_object(self.save_ref, self.allowed)(fitted)
        if not isinstance(data, bytes):
            raise StepError(f"{self.save_ref!r} returned {type(data).__name__}, not bytes")
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """What ``load`` makes of the bytes."""
        return import_object(self.load_ref, self.allowed)(stream.read())


SERIALIZERS: Mapping[str, Callable[[Step, Sequence[str]], Serializer]] = {
    "joblib": lambda step, allowed: JoblibSerializer(),
    "skops": lambda step, allowed: SkopsSerializer(allowed),
    "xgboost": XGBoostSerializer,
    "lightgbm": LightGBMSerializer,
    "custom": lambda step, allowed: CustomSerializer(
        str(step.parameters.save), str(step.parameters.load), allowed
    ),
}
""":attr:`Step.serializer` -> the serializer, given the step and the allow-list."""


def _serializer(step: Step, allowed: Sequence[str]) -> Serializer:
    return SERIALIZERS[step.serializer](step, allowed)


def save_fitted(fitted: Any, step: Step, allowed: Sequence[str]) -> bytes:
    """The step's asset bytes, written by its ``save`` callable or its ``serializer``."""
    return _serializer(step, allowed).save(fitted)


def load_fitted(stream: IO[bytes], step: Step, allowed: Sequence[str]) -> Any:
    """The fitted object from the asset file :func:`save_fitted`'s bytes were stored in."""
    return _serializer(step, allowed).load(stream)
