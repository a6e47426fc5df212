"""Optional heavy libraries, imported where they are used, with an install hint when missing.

Parsing DAGs, validating definitions and polling a store never pay for pandas or scikit-learn;
only a running step or a served prediction imports them, through :func:`library`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from model_steps.errors import MissingModuleError

__all__ = ["install_hint", "library"]

ML_LIBRARIES = frozenset({"pandas", "sklearn", "pyarrow", "joblib", "skops"})
"""Libraries the package's ``ml`` extra installs, so their hint names the extra."""
PIP_NAMES = {"sklearn": "scikit-learn", "yaml": "PyYAML", "skimage": "scikit-image"}
"""Import names whose distribution on PyPI is called something else."""


def install_hint(module: str) -> str:
    """The pip command that provides ``module``."""
    top = module.partition(".")[0]
    if top in ML_LIBRARIES:
        return "pip install 'airflow-model-steps[ml]'"
    return f"pip install {PIP_NAMES.get(top, top)}"


def library(name: str) -> ModuleType:
    """Import one of the package's own optional libraries, with an install hint when missing.

    Heavy libraries are imported where they are used, so parsing DAGs never pays for them.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        raise MissingModuleError(
            f"{name} is needed to train and infer models: {install_hint(name)}",
            module=name,
        ) from error
