"""Saving a fitted step and loading it back: joblib, skops or the step's own functions.

A registry keyed by ``StepParameters.serializer``; a step's ``save``/``load`` pair wins over it.
Loading is the dangerous half (a joblib file is a pickle), so the store verifies every asset's
checksum before a serializer sees it, and skops refuses types outside the allow-list.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from model_steps.definition.allowlist import import_object, is_allowed
from model_steps.errors import StepError, UntrustedTypeError
from model_steps.libraries import library

if TYPE_CHECKING:
    from model_steps.definition.schema import Step

__all__ = [
    "SERIALIZERS",
    "CustomSerializer",
    "JoblibSerializer",
    "Serializer",
    "SkopsSerializer",
    "load_fitted",
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
        data: bytes = library("skops.io").dumps(fitted)
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """The object, refusing types from modules outside the allow-list.

        Raises:
            UntrustedTypeError: the archive names types from modules that are not allowed.
        """
        sio = library("skops.io")
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


SERIALIZERS: Mapping[str, Callable[[Sequence[str]], Serializer]] = {
    "joblib": lambda allowed: JoblibSerializer(),
    "skops": SkopsSerializer,
}
"""``StepParameters.serializer`` -> the serializer, given the allow-list."""


def _serializer(step: Step, allowed: Sequence[str]) -> Serializer:
    params = step.parameters
    if params.save is not None and params.load is not None:
        return CustomSerializer(params.save, params.load, allowed)
    return SERIALIZERS[params.serializer](allowed)


def save_fitted(fitted: Any, step: Step, allowed: Sequence[str]) -> bytes:
    """The step's asset bytes, written by its ``save`` callable or its ``serializer``."""
    return _serializer(step, allowed).save(fitted)


def load_fitted(stream: IO[bytes], step: Step, allowed: Sequence[str]) -> Any:
    """The fitted object from the asset file :func:`save_fitted`'s bytes were stored in."""
    return _serializer(step, allowed).load(stream)
