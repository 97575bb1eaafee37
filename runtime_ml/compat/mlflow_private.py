"""MLflow's private APIs that tracking uses, each guarded, with a public fallback.

tests/test_compat.py and tests/test_tracking.py fail loudly when MLflow moves one of them.
"""

import importlib
import os
from typing import Any, Callable, Optional

# The module of MLflow's store for database tracking URIs (sqlite:///, postgresql://, ...): not a
# public name; importing it loads SQLAlchemy and maps MLflow's tables (1-2 s).
DATABASE_STORE_MODULE = "mlflow.store.tracking.sqlalchemy_store"


def load_database_store(uri: Optional[str] = None) -> bool:
    """Import the database store's module ahead of need, and the SQLAlchemy dialect of `uri`
    (its module loads when the store makes its engine: 0.2-0.4 s for sqlite); nothing is opened.
    False if MLflow moved the store's module."""
    try:
        importlib.import_module(DATABASE_STORE_MODULE)
    except ImportError:
        return False
    if uri is not None:
        try:
            from sqlalchemy.engine import make_url

            make_url(uri).get_dialect()
        except Exception:  # the store reports a URI it cannot use, where the user sees it
            pass
    return True


def active_experiment_id() -> str:
    """The experiment mlflow.start_run() would use (set_experiment, env vars, or the default)."""
    from mlflow.tracking import fluent

    getter = getattr(fluent, "_get_experiment_id", None)  # private; guarded, with a fallback
    if getter is not None:
        try:
            return getter()
        except Exception:
            pass
    return os.environ.get("MLFLOW_EXPERIMENT_ID", "0")


def quiet_run_update(client: Any) -> Optional[Callable[..., Any]]:
    """The store call that ends a run without printing its URL, or None if MLflow moved it.

    MlflowClient.set_terminated writes two 'View run / View experiment' lines to stdout per run
    on newer MLflow, and asks the server for the run once more to build them: two lines and one
    extra request per trial. Underneath it calls the store's update_run_info, which does only the
    update. That store is reached through MlflowClient's private `_tracking_client`, so the lookup
    is guarded and set_terminated stays the fallback; tests/test_tracking.py fails if it is lost.
    """
    try:
        update = client._tracking_client.store.update_run_info
    except Exception:
        return None
    return update if callable(update) else None
