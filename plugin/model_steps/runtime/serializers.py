"""Saving a fitted step and loading it back: joblib, skops, a library's format or your own.

A registry keyed by :attr:`Step.serializer` (the ``serializer`` a step names, else the one its
asset's extension implies; a step's ``save``/``load`` pair wins over both).
Loading is the dangerous half (a joblib file is a pickle), so the store verifies every asset's
checksum before a serializer sees it, skops refuses types outside the allow-list, and ``save`` /
``load`` must be functions of the DAGs folder's own code (or ones the deployment listed).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from model_steps.errors import SerializerRefusedError, StepError, UntrustedTypeError
from model_steps.libraries import library
from model_steps.runtime.native import LightGBMSerializer, XGBoostSerializer
from model_steps.runtime.resolution import resolve_function
from model_steps.runtime.skops_types import type_problem
from model_steps.settings import AllowList

if TYPE_CHECKING:
    from model_steps.definition.schema import Step
    from model_steps.store.manifest import AssetRecord

__all__ = [
    "SERIALIZERS",
    "STRENGTH",
    "CustomSerializer",
    "JoblibSerializer",
    "Serializer",
    "SkopsSerializer",
    "check_loading",
    "load_fitted",
    "quiet_type_lookup",
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


@dataclass(frozen=True)
class SkopsSerializer:
    """skops: loads only types it trusts, plus those from allowed modules."""

    allow: AllowList

    def save(self, fitted: Any) -> bytes:
        """The skops archive of ``fitted``."""
        quiet_type_lookup()
        data: bytes = library("skops.io").dumps(fitted)
        return data

    def load(self, stream: IO[bytes]) -> Any:
        """The object, once every type and function the archive names proved allowed.

        Raises:
            UntrustedTypeError: the archive names a type or function that is not allowed
                (:mod:`model_steps.runtime.skops_types` says which and why).
        """
        sio = library("skops.io")
        quiet_type_lookup()
        unknown = list(sio.get_untrusted_types(file=stream))
        problems = {name: type_problem(name, self.allow) for name in unknown}
        refused = {name: problem for name, problem in problems.items() if problem}
        if refused:
            raise UntrustedTypeError(
                "the skops file names what a model's file may not hold, so nothing of it was "
                f"loaded: {'; '.join(f'{name} ({why})' for name, why in refused.items())}; a "
                "skops file may hold classes of the allowed imports (MODEL_STEPS_ALLOWED_IMPORTS)"
                " and functions of the DAGs folder's code or MODEL_STEPS_ALLOWED_FUNCTIONS",
                types=list(refused),
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


SERIALIZERS: Mapping[str, Callable[[Step, AllowList], Serializer]] = {
    "joblib": lambda step, allow: JoblibSerializer(),
    "skops": lambda step, allow: SkopsSerializer(allow),
    "xgboost": XGBoostSerializer,
    "lightgbm": LightGBMSerializer,
    "custom": lambda step, allow: CustomSerializer.of(
        str(step.parameters.save), str(step.parameters.load), allow
    ),
}
""":attr:`Step.serializer` -> the serializer, given the step and the allow-list."""


def serializer_for(step: Step, allow: AllowList) -> Serializer:
    """The step's serializer (its ``save``/``load`` pair and native formats resolved now)."""
    return SERIALIZERS[step.serializer](step, allow)


def load_fitted(stream: IO[bytes], step: Step, allow: AllowList) -> Any:
    """The fitted object from a step's asset file, read by its serializer."""
    return serializer_for(step, allow).load(stream)


STRENGTH: Mapping[str, int] = {"skops": 2, "xgboost": 2, "lightgbm": 2, "custom": 1, "joblib": 0}
"""How little loading with each serializer can do, strongest first: skops builds only the types
it proves allowed and the native formats read a library's own model file (2); ``custom`` runs
the deployment's own load function (1); joblib unpickles, which runs whatever the file says (0).
"""


def check_loading(recorded: Step, asset: AssetRecord, defined: Step | None) -> None:
    """Refuse to load a stored step with a serializer its definition would not use.

    A manifest (or a run's scratch) says which serializer wrote each asset, and whoever can
    write the store can write that too: a file saved as "joblib" in a model defined with skops
    would be unpickled. So the recorded step and its asset must agree, and when the definition
    is known the serializer must be as strong as the definition's (``custom`` only with the
    definition's own load function).

    Raises:
        SerializerRefusedError: the stored step asks for a weaker or a different loader.
    """
    where = f"the stored step {recorded.id!r}"
    if asset.serializer != recorded.serializer:
        raise SerializerRefusedError(
            f"{where} is defined with serializer {recorded.serializer!r} but its asset says "
            f"{asset.serializer!r}: its manifest was edited, so it is not loaded"
        )
    if defined is None:
        return
    stored, wanted = recorded.serializer, defined.serializer
    loads = recorded.parameters.load, defined.parameters.load
    other_load = stored == wanted == "custom" and loads[0] != loads[1]
    if STRENGTH.get(stored, -1) < STRENGTH.get(wanted, 0) or other_load:
        raise SerializerRefusedError(
            f"{where} would be loaded with serializer {stored!r}"
            f"{_load_of(recorded)}, but its definition uses {wanted!r}{_load_of(defined)}: a "
            "stored version is never loaded with a weaker serializer than its definition's "
            "(skops, xgboost, lightgbm > custom > joblib); train a new version"
        )


def _load_of(step: Step) -> str:
    return f" ({step.parameters.load})" if step.serializer == "custom" else ""
