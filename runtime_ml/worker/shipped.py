"""The objective as it reaches a Python worker: shipped once per fmin, loaded once per worker."""

import pickle
from typing import Any

# The newest fmin's objective in this worker, by where it was shipped; it stays until the worker
# runs a trial of another fmin.
_objective: dict = {}


def cached_objective(key, load):
    """The objective shipped as `key`, loaded once per worker; an older fmin's is dropped."""
    if key not in _objective:
        _objective.clear()
        _objective[key] = load()
    return _objective[key]


class FileObjective:
    """The objective in a file every worker can open (`path`), read and unpickled once per Python
    worker (cached_objective keeps only the newest fmin's)."""

    def __init__(self, path: str):
        self.path = path

    @property
    def value(self) -> Any:
        return cached_objective(self.path, self._load)

    def _load(self):
        with open(self._where(), "rb") as shipped:
            return pickle.load(shipped)

    def _where(self):
        return self.path


class ArtifactObjective(FileObjective):
    """The objective as a Spark Connect session artifact: a file the session's executors have."""

    def _where(self):
        from pyspark import SparkFiles

        return SparkFiles.get(self.path)

