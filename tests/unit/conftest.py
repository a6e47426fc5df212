"""Unit tests see no developer's home: ``~/airflow/airflow.cfg`` is read by ``load_settings``
when it is given an environment without ``AIRFLOW_HOME``, so ``HOME`` is an empty folder here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def empty_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty ``HOME`` for the whole unit session."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        yield home
