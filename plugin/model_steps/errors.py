"""One error hierarchy for the whole package.

Every problem a user can act on carries where it is (file, line, column, field path) as
structured fields, so the CLI, the API and the Airflow UI can each format it their own way.
Nothing here formats for a particular surface except :func:`format_problem`, the one-line form
shared by the CLI and the placeholder DAGs.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AssetLocationError",
    "AwaitingApprovalError",
    "CandidateRefusedError",
    "ChecksumMismatchError",
    "CorruptDocumentError",
    "DecisionConflictError",
    "DefinitionError",
    "Finding",
    "ImportRefusedError",
    "InvalidInputError",
    "MissingAttributeError",
    "MissingColumnsError",
    "MissingModuleError",
    "ModelStepsError",
    "NotDeployedError",
    "NotReadyError",
    "NotServableError",
    "PermanentError",
    "PointerMissingError",
    "Problem",
    "PublishConflictError",
    "SerializerRefusedError",
    "StepError",
    "StoreOwnedError",
    "StoreUnavailableError",
    "Suggesting",
    "TemplateError",
    "TooManyRecordsError",
    "UnknownMetricError",
    "UnknownModelError",
    "UnknownParameterError",
    "UnsafeUrlError",
    "UntrustedTypeError",
    "closest",
    "did_you_mean",
    "format_problem",
    "hint",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a model definition, located as precisely as the source allows.

    ``line`` and ``column`` are 1-based, like editors show them; 0 means "the whole file"
    (for example a file that cannot be read at all).
    """

    file: str
    line: int
    column: int
    field: str
    code: str
    message: str
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """A problem located by its field path in the model, before it is given a line and column.

    The checks produce findings; the loader turns them into :class:`Problem` s with positions
    read from the file, so every surface shows the same ``path:line:column: field`` form.
    """

    loc: tuple[str | int, ...]
    code: str
    message: str
    suggestions: tuple[str, ...] = ()


def format_problem(problem: Problem) -> str:
    """Render a problem as ``path:line:column: field: message``, the form editors link to."""
    where = f"{problem.file}:{problem.line}:{problem.column}"
    head = f"{where}: {problem.field}:" if problem.field else f"{where}:"
    return f"{head} {problem.message}{hint(problem.suggestions)}"


def hint(suggestions: Sequence[str]) -> str:
    """`` (did you mean 'a' or 'b'?)``, or nothing without suggestions."""
    if not suggestions:
        return ""
    return f" (did you mean {' or '.join(repr(s) for s in suggestions)}?)"


def did_you_mean(word: str, choices: Iterable[str]) -> tuple[str, ...]:
    """Near misses for a misspelt key, so a typo's error points at the intended field."""
    return tuple(difflib.get_close_matches(word, list(choices), n=2, cutoff=0.6))


def closest(word: str, choices: Iterable[str]) -> tuple[str, ...]:
    """Near misses for a name people abbreviate or capitalise: :func:`did_you_mean` first.

    Then a different case (``c`` for ``C``), initials (``rmse`` for
    ``root_mean_squared_error``) and a prefix either way (``Cee`` for ``C``), so the
    suggestion names what was meant even when the spelling is far from it.
    """
    options = list(choices)
    found = did_you_mean(word, options)
    if found:
        return found
    lower = word.lower()
    for matches in (
        lambda c: c.lower() == lower,
        lambda c: "".join(part[:1] for part in c.lower().split("_")) == lower,
        lambda c: lower.startswith(c.lower()) or c.lower().startswith(lower),
    ):
        found = tuple(c for c in options if matches(c))[:2]
        if found:
            return found
    return ()


class ModelStepsError(Exception):
    """Base of every error this package raises on purpose."""


class PermanentError(ModelStepsError):
    """A failure that retrying cannot fix, so a task fails at once instead of retrying."""


class DefinitionError(PermanentError):
    """A model definition file cannot be used; carries every problem found in it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems)
        self.problems = tuple(problems)

    def __str__(self) -> str:
        return "\n".join(format_problem(p) for p in self.problems)


class StoreUnavailableError(ModelStepsError):
    """The store could not be asked (network, credentials, outage): not the same as "missing".

    fsspec's ``exists()`` turns such failures into False; for a handler that would read as "no
    version published", so every read distinguishes the two.
    """


class CorruptDocumentError(PermanentError):
    """A pointer or manifest exists but cannot be parsed or breaks the layout's rules."""


class AssetLocationError(CorruptDocumentError):
    """A manifest names an asset outside its model's store: it is never read nor deleted."""


class ChecksumMismatchError(PermanentError):
    """An asset's bytes differ from what its manifest recorded: it is never loaded."""


class PublishConflictError(ModelStepsError):
    """Another writer kept winning the race for the pointer; retrying later is safe."""


class ImportRefusedError(PermanentError):
    """A definition names a module outside the allow-list, or a private attribute."""

    def __init__(self, message: str, *, module: str, allowed: Sequence[str]) -> None:
        super().__init__(message)
        self.module = module
        self.allowed = tuple(allowed)


class Suggesting(ModelStepsError):
    """An error with near misses: the message ends with "did you mean" when there are any.

    ``reason`` is the message without it and ``suggestions`` the near misses, so a surface
    that shows suggestions its own way (``model-steps validate``) does not show them twice.
    """

    def __init__(self, reason: str, *, suggestions: Sequence[str] = ()) -> None:
        super().__init__(reason + hint(suggestions))
        self.reason = reason
        self.suggestions = tuple(suggestions)


class MissingModuleError(Suggesting, PermanentError):
    """An allowed module is not installed where the task runs (or is misspelt)."""

    def __init__(self, reason: str, *, module: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(reason, suggestions=suggestions)
        self.module = module


class MissingAttributeError(Suggesting, PermanentError):
    """The module (or class) has no attribute (or method) of the name the definition gives."""


class StepError(PermanentError):
    """A step's definition does not fit its code or its data; retrying cannot help."""


class MissingColumnsError(StepError):
    """The training data lacks the target or feature columns the definition names."""

    def __init__(self, message: str, *, missing: Sequence[str], available: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)
        self.available = tuple(available)


class UnknownMetricError(Suggesting, StepError):
    """A metric name is neither a scikit-learn scorer nor ``pkg.mod:fn``."""


class SerializerRefusedError(PermanentError):
    """A stored step would be loaded with a serializer its definition does not allow."""


class UntrustedTypeError(StepError):
    """A skops file holds types from modules outside the allow-list, so it is not loaded."""

    def __init__(self, message: str, *, types: Sequence[str]) -> None:
        super().__init__(message)
        self.types = tuple(types)


class NotDeployedError(ModelStepsError):
    """A handler was asked to serve a model whose definition does not say ``status: deployed``."""


class NotReadyError(ModelStepsError):
    """No version is loaded yet, or unload-first mode is between two versions: try again soon."""


class InvalidInputError(ModelStepsError):
    """Records a model cannot predict on: empty, missing or unknown columns, wrong types."""


class TooManyRecordsError(InvalidInputError):
    """More records in one request than the server takes (HTTP 413)."""


class UnknownModelError(ModelStepsError, KeyError):
    """A handler set was asked for a model it does not serve.

    A ``KeyError``, so ``name in handlers`` and ``handlers.get(name)`` work as for any mapping.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # KeyError would quote the message


class PointerMissingError(ModelStepsError):
    """``current.json`` disappeared from a store that had published versions."""


class NotServableError(PermanentError):
    """A version the gate refused, or one waiting for or denied approval, cannot be served."""


class DecisionConflictError(ModelStepsError):
    """A person's decision on a candidate was already recorded (by someone else, or earlier)."""


class CandidateRefusedError(PermanentError):
    """The gate refused a trained candidate: it is kept, with the reason, and never served."""


class AwaitingApprovalError(ModelStepsError):
    """A candidate passed the gate's rules and waits for a person to approve it."""


class StoreOwnedError(PermanentError):
    """A store belongs to another model: nothing of this model is written to or read from it."""

    def __init__(self, message: str, *, owner: str, model: str) -> None:
        super().__init__(message)
        self.owner = owner
        self.model = model


class TemplateError(PermanentError):
    """A template of a definition failed to render, or tried what the sandbox refuses."""


class UnsafeUrlError(TemplateError):
    """A rendered URL leaves the place its template fixes (``..``, another scheme or bucket)."""


class UnknownParameterError(PermanentError):
    """A run's config sets parameters the model does not declare (a typo would pass silently)."""

    def __init__(self, message: str, *, unknown: Sequence[str], suggestions: Sequence[str]) -> None:
        super().__init__(message)
        self.unknown = tuple(unknown)
        self.suggestions = tuple(suggestions)
