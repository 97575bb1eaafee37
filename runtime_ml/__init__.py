"""runtime-ml: Databricks-Runtime-ML-style Hyperopt on any Spark cluster, with zero code change.

Importing this package is cheap (the startup hook does it in every Python process); hyperopt,
pyspark and mlflow are imported only when a tuning job needs them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # no typing at import (the annotations are strings; mypy reads the names)
if TYPE_CHECKING:
    from typing import Any, Optional

__version__ = "0.1.0"


def activate() -> bool:
    """Route SparkTrials fmin calls through runtime-ml (idempotent).

    Installs the import hook, so hyperopt is patched when it is first imported, and patches it now
    if it already was. Returns False when RUNTIME_ML_DISABLED is set or hyperopt is unsupported.
    """
    import sys

    from runtime_ml.driver import patch
    from runtime_ml.startup import hook

    if not hook.install():
        return False
    spark_module = sys.modules.get(hook.TARGET_MODULE)
    if spark_module is not None:
        return patch.patch_module(spark_module)
    return True


def deactivate() -> None:
    """Undo `activate`: remove the import hook and restore hyperopt's original objects (idempotent)."""
    import sys

    from runtime_ml.driver import patch
    from runtime_ml.startup import hook

    hook.uninstall()
    spark_module = sys.modules.get(hook.TARGET_MODULE)
    if spark_module is not None:
        patch.unpatch_module(spark_module)


def is_active() -> bool:
    """True when hyperopt is loaded and its SparkTrials is patched."""
    from runtime_ml.driver import patch

    return patch.is_patched()


def trials_from_run(run_id: str, fmin_uuid: Optional[str] = None,
                    **sparktrials_arguments: Any) -> Any:
    """A SparkTrials holding the finished trials of the search tracked in MLflow run `run_id`;
    `fmin(..., trials=...)` continues that search (see runtime_ml.tracking.resume.trials_from_run)."""
    from runtime_ml.tracking.resume import trials_from_run as load

    return load(run_id, fmin_uuid, **sparktrials_arguments)
