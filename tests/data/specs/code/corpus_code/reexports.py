"""A DAGs-folder module that imports code from elsewhere: none of it is the deployment's own.

The security corpus names these through this module; each must be refused because the object's
code lives outside the DAGs folder, whatever module name leads to it.
"""

from __future__ import annotations

from os import system
from subprocess import Popen

from pandas import read_pickle

__all__ = ["Popen", "read_pickle", "system"]
