"""The startup hook: patch hyperopt's SparkTrials the moment `hyperopt.spark` is loaded.

`runtime-ml install-hook` writes `pth_line(...)` into an interpreter's site-packages. It runs in
every Python process of that interpreter, PySpark workers included, so it imports nothing: it only
puts a tiny bootstrap finder on sys.meta_path (and, in PySpark's processes only, moves Spark's zips
that the installed pyspark makes redundant to the end of sys.path: see pyspark_zips). The first
time anything imports `hyperopt.spark`, the bootstrap replaces itself with `HyperoptImportHook`
from this module, which patches the module right after it executes. Because
`hyperopt/__init__.py` imports `hyperopt.spark`, code doing `from hyperopt import fmin,
SparkTrials` only ever sees the patched class.
"""

import os
import sys
from types import ModuleType
from typing import Dict, List, Optional

from runtime_ml import conf
from runtime_ml.startup.import_hooks import PostImportHook

TARGET_MODULE = "hyperopt.spark"
PTH_NAME = "runtime_ml_hook.pth"

# Executed by `site` at start-up, twice in a venv (through its lib64 link): the check before exec
# keeps the second pass from compiling anything. Uses only `sys`, which `site` has loaded; tolerates
# runtime_ml having been uninstalled since.
_BOOTSTRAP = """
class RuntimeMlBootstrap:
    def find_spec(self, name, path=None, target=None):
        if name == 'hyperopt.spark':
            import sys
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            try:
                from runtime_ml.startup.hook import find_spec_once_hyperopt_loads as find_spec
            except ImportError:
                return None
            return find_spec(name, path, target)
sys.meta_path.insert(0, RuntimeMlBootstrap())
"""
PTH_LINE = (
    "import sys; any(type(f).__name__ == 'RuntimeMlBootstrap' for f in sys.meta_path) or exec(%r)\n"
    % _BOOTSTRAP
)
# With zips recorded (pyspark_zips.redundant_zips): in a process that has one on its path, a
# PySpark daemon or worker, move them to the end of it.
_ZIPS_LAST = """
try:
    from runtime_ml.startup.pyspark_zips import move_redundant_zips_last
except ImportError:
    pass
else:
    move_redundant_zips_last(%r)
"""


def pth_line(redundant_zips: Optional[Dict[str, List[int]]] = None) -> str:
    """The .pth line: the bootstrap, and the step that moves the recorded redundant zips last."""
    if not redundant_zips:
        return PTH_LINE
    names = tuple(sorted({os.path.basename(path) for path in redundant_zips}))
    return PTH_LINE.rstrip("\n") + (
        "; any(p.endswith(%r) for p in sys.path) and exec(%r)\n"
        % (names, _ZIPS_LAST % (dict(sorted(redundant_zips.items())),)))


class HyperoptImportHook(PostImportHook):
    """Patches `hyperopt.spark` as it loads."""

    target = TARGET_MODULE

    def after_exec(self, module: ModuleType) -> None:
        from runtime_ml.driver import patch

        patch.patch_module(module)


def find_spec_once_hyperopt_loads(fullname, path, target):
    """Called by the .pth bootstrap the first time `hyperopt.spark` is imported."""
    if not install():
        return None
    return _installed_hook().find_spec(fullname, path, target)


def _installed_hook():
    for finder in sys.meta_path:
        if isinstance(finder, HyperoptImportHook):
            return finder
    return None


def install() -> bool:
    """Put the finder first on sys.meta_path (idempotent). Honors RUNTIME_ML_DISABLED."""
    if conf.runtime_disabled():
        return False
    if _installed_hook() is None:
        sys.meta_path.insert(0, HyperoptImportHook())
    return True


def uninstall() -> None:
    """Remove the finders, the .pth bootstrap included (idempotent).

    Modules already patched stay patched: see runtime_ml.deactivate.
    """
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not isinstance(finder, HyperoptImportHook)
        and type(finder).__name__ != "RuntimeMlBootstrap"
    ]
