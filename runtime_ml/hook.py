"""The startup hook: patch hyperopt's SparkTrials the moment `hyperopt.spark` is loaded.

The `.pth` line that `runtime-ml install-hook` writes imports this module in every Python process of
that interpreter, PySpark workers included. So this module imports nothing beyond the standard
library modules `site` already loaded, and does no work until hyperopt itself is imported.
Because `hyperopt/__init__.py` imports `hyperopt.spark`, patching right after that submodule runs
means code doing `from hyperopt import fmin, SparkTrials` only ever sees the patched class.
"""

import sys

from runtime_ml import conf

TARGET_MODULE = "hyperopt.spark"
PTH_NAME = "runtime_ml_hook.pth"
PTH_LINE = "import runtime_ml.hook; runtime_ml.hook.install()\n"


class _LoaderProxy:
    """Delegates to the real loader and patches the module once it has executed."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        from runtime_ml import patch

        patch.patch_module(module)


class HyperoptImportHook:
    """A meta-path finder that only ever answers for `hyperopt.spark`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TARGET_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _LoaderProxy(spec.loader)
                return spec
        return None


def _installed_hook():
    for finder in sys.meta_path:
        if isinstance(finder, HyperoptImportHook):
            return finder
    return None


def install():
    """Put the finder first on sys.meta_path (idempotent). Honors RUNTIME_ML_DISABLED."""
    if conf.runtime_disabled():
        return False
    if _installed_hook() is None:
        sys.meta_path.insert(0, HyperoptImportHook())
    return True


def uninstall():
    """Remove the finder (idempotent). Modules already patched stay patched: see runtime_ml.deactivate."""
    hook = _installed_hook()
    while hook is not None:
        sys.meta_path.remove(hook)
        hook = _installed_hook()
