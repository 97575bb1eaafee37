"""MLflow's private APIs that tracking uses, each guarded, with a public fallback.

tests/test_compat.py and tests/test_tracking.py fail loudly when MLflow moves one of them.
"""

import importlib
import os
import sys
from typing import Any, Callable, Optional, Tuple

from runtime_ml.policy import private_name_moved

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
    if getter is None:
        private_name_moved("mlflow.tracking.fluent._get_experiment_id",
                           "the experiment is MLFLOW_EXPERIMENT_ID's, or the default")
    else:
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
    except AttributeError:
        update = None
    except Exception:  # the store itself could not be made: set_terminated will say why
        return None
    if not callable(update):
        private_name_moved("MlflowClient._tracking_client.store.update_run_info",
                           "runs end through set_terminated, which prints their links")
        return None
    return update


# MLflow keeps what mlflow.set_tracking_uri and mlflow.set_experiment chose in private module
# globals (mlflow 2.9 to 3.x). A reused Python worker puts them back after each trial; read from
# sys.modules only, so nothing is imported. When they move, set_tracking_uri is the fallback for the
# URI, and the experiment is left as the trial set it; tests/test_compat.py fails loudly.
MLFLOW_TRACKING_URI_GLOBAL = ("mlflow.tracking._tracking_service.utils", "_tracking_uri")
MLFLOW_EXPERIMENT_GLOBAL = ("mlflow.tracking.fluent", "_active_experiment_id")
_MISSING = object()


def _mlflow_global(where):
    """The global, or _MISSING: its module is not loaded, is still being imported (MLflow's
    background import: the module is in sys.modules before its globals are set), or moved it.
    The last cannot be told from the second here, so it is not said at run time: the compat test
    fails loudly instead."""
    module = sys.modules.get(where[0])
    return _MISSING if module is None else getattr(module, where[1], _MISSING)


def mlflow_fluent_state() -> Tuple[Any, Any]:
    """(tracking URI, experiment id) as set in this process, None for unset or mlflow not loaded."""
    uri, experiment = (_mlflow_global(where)
                       for where in (MLFLOW_TRACKING_URI_GLOBAL, MLFLOW_EXPERIMENT_GLOBAL))
    return (None if uri is _MISSING else uri, None if experiment is _MISSING else experiment)


def restore_mlflow_fluent_state(state: Tuple[Any, Any]) -> None:
    if "mlflow" not in sys.modules or mlflow_fluent_state() == state:
        return
    for where, value in zip((MLFLOW_TRACKING_URI_GLOBAL, MLFLOW_EXPERIMENT_GLOBAL), state, strict=True):
        if _mlflow_global(where) is not _MISSING:
            setattr(sys.modules[where[0]], where[1], value)
        elif where is MLFLOW_TRACKING_URI_GLOBAL and value is not None:
            sys.modules["mlflow"].set_tracking_uri(value)
