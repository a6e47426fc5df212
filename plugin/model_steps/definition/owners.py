"""Which file owns each model name: adding a file never changes what an existing model runs.

A DAGs folder is shared. Deciding a name by path (``dags/a/iris.yaml`` sorts before
``dags/iris.yaml``) let a newcomer take ``iris``: its DAGs replaced the owner's and published
into iris's store. A name now belongs to the file that held it first:

- at parse time, which must not touch the network, the DAG processor keeps a small record of
  each name's file (:class:`NameRecord`, ``$AIRFLOW_HOME/model-steps/names.json``): the
  recorded file keeps the name while it still claims it, even while it is broken, and any other
  file with that name is the invalid one, its message naming the owner's file;
- the store's owner record (``owner.json``), shared by every process, names the defining file
  too: tasks refuse to train, infer or publish from another file
  (:mod:`model_steps.runtime.ownership`), so a process without the local record (a fresh
  worker) can never act for a newcomer.

A name moves when its recorded file stops claiming it: the file is gone, is no longer a model
definition, or names another model. So renaming or moving a model's file is one change that
moves the file (``git mv dags/iris.yaml dags/botany/iris.yaml``): the old path no longer
claims ``iris`` and the new one takes it over, in the record and in the store's owner record.
Keeping both files for a while would keep the old one the owner.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NameRecord", "relative_name"]

log = logging.getLogger(__name__)


def relative_name(path: Path, folder: Path | None) -> str:
    """``path`` as records and users see it: relative to the DAGs folder, else as it is.

    A path found under the folder (as the loader finds every file) is cut by its text, which
    costs no system call; any other is resolved first (a symlink, a ``..``).
    """
    if folder is not None:
        text, prefix = str(path), str(folder).rstrip("/") + "/"
        if text.startswith(prefix) and "/../" not in text and "/./" not in text:
            return text[len(prefix) :]
        with contextlib.suppress(ValueError):
            return path.resolve().relative_to(folder.resolve()).as_posix()
    return path.as_posix()


@dataclass(frozen=True)
class NameRecord:
    """The file owning each model name, kept in one JSON file (``None``: kept nowhere).

    ``writable`` is False for a reader that must agree with the DAG processor without changing
    what it decided (``model-steps validate`` in the deployment).
    """

    path: Path | None
    writable: bool = True

    def read(self, folder: Path | None) -> dict[str, str]:
        """Name -> owning file in ``folder``; empty when nothing is recorded or usable."""
        entries = self._entries().get(_key(folder), {})
        return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}

    def _entries(self) -> dict[str, dict[str, str]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("ignoring the model-name record %s: %s", self.path, error)
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def update(
        self, folder: Path | None, owners: Mapping[str, str], released: Iterable[str] = ()
    ) -> None:
        """Record ``owners`` in ``folder`` over what is recorded, dropping ``released`` names.

        Read, changed and replaced in one rename, so a reader sees a whole record; names another
        load recorded meanwhile are kept, since each load only speaks for the names it saw.
        """
        if self.path is None or not self.writable or folder is None:
            return
        everything = self._entries()
        current = everything.get(_key(folder), {})
        merged = {**current, **owners}
        for name in released:
            merged.pop(name, None)
        if merged == current:
            return
        everything[_key(folder)] = dict(sorted(merged.items()))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".names-")
            with os.fdopen(handle, "w") as out:
                json.dump(everything, out, indent=1, sort_keys=True)
            Path(temporary).replace(self.path)
        except OSError as error:  # a read-only home: names are decided, just not remembered
            log.warning("cannot record model names in %s: %s", self.path, error)


def _key(folder: Path | None) -> str:
    """Entries are kept per DAGs folder: a check of another folder never reads the deployment's."""
    return str(folder.resolve()) if folder is not None else ""
