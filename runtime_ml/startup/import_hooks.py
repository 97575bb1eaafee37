"""A meta-path finder that hands one module to a callback right after it executes.

Used by the startup hook (hyperopt.spark) and by the executor's MLflow guard (mlflow's fluent API).
Imports nothing: the startup hook runs in every Python process.
"""

import sys
from types import ModuleType
from typing import Any, Optional


class _LoaderProxy:
    """Delegates to the real loader and calls `after_exec(module)` once the module has executed."""

    def __init__(self, loader, after_exec):
        self._loader = loader
        self._after_exec = after_exec

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._after_exec(module)


class PostImportHook:
    """A meta-path finder that only ever answers for `target`, and hands the module to
    `after_exec` right after it executes, before the importing code gets it."""

    target: Optional[str] = None

    def after_exec(self, module: ModuleType) -> None:
        raise NotImplementedError

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.target:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _LoaderProxy(spec.loader, self.after_exec)  # type: ignore[assignment]
                return spec
        return None
