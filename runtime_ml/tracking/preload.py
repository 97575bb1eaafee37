"""MLflow imported in the background on the driver, from the moment SparkTrials is patched.

`import mlflow` takes 1-3 s (and as long again for a database store's module: SQLAlchemy and
MLflow's table mappings), and tracking needs MLflow when an fmin starts, before its first trial
launches. A user's script imports hyperopt at its top, then starts Spark, reads its data and
defines the objective: a daemon thread imports MLflow meanwhile, so the first fmin finds it loaded
(when the user imported MLflow first, the import is simply shared). An fmin that comes before the
import ends launches its first trials meanwhile when MLFLOW_TRACKING_URI names the store
(tracking.search.decide), and waits for the rest otherwise.

Skipped where nothing will be tracked: in PySpark's Python workers (they import only what the
objective needs), when MLflow is missing or already loaded, and when the running SparkContext's
conf switches tracking off (before Spark starts: the spark-defaults.conf it will read). A fork
(os.fork, multiprocessing) waits for the import to end, so no child process inherits a
half-imported module.
"""

import builtins
import importlib.util
import os
import sys
import threading
from typing import Optional

from runtime_ml import conf
from runtime_ml.compat import mlflow_private, spark_private

_thread: Optional[threading.Thread] = None
_lock = threading.Lock()
_WORKER_MODULES = ("pyspark.daemon", "pyspark.worker")


def in_pyspark_worker(environ=None, modules=None) -> bool:
    """True in a process PySpark started to run tasks (its secret is in the environment)."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    return "PYTHON_WORKER_FACTORY_SECRET" in environ or any(m in modules for m in _WORKER_MODULES)


def tracking_switched_off() -> bool:
    """The running SparkContext's conf says no tracking; with no context yet, the
    spark-defaults.conf a Spark application started here would read (where admins switch it off
    for a cluster). Not known: False."""
    context = spark_private.running_spark_context()
    if context is None:
        path = conf.spark_defaults_path()
        values = conf.read_defaults_file(path) if path else None
        value = values.get(conf.TRACK_HYPEROPT.name) if values else None
    else:
        try:
            value = context.getConf().get(conf.TRACK_HYPEROPT.name, None)
        except Exception:
            return False
    return conf.parse_spark_bool(value) is False


def wanted() -> bool:
    if "mlflow" in sys.modules or in_pyspark_worker():
        return False
    if importlib.util.find_spec("mlflow") is None:
        return False
    return not tracking_switched_off()


def start() -> bool:
    """Start the background import (at most once per process); True when it was started."""
    global _thread
    with _lock:
        if _thread is not None or not wanted():
            return False
        _thread = threading.Thread(target=_import, name="runtime-ml-mlflow-import", daemon=True)
        # The standard modules MLflow loads that register fork handlers in pairs (a lock taken
        # before a fork, released after it) are loaded here, first: loaded by the thread while a
        # fork waits for it, their handler after the fork would run without the one before and
        # print "Exception ignored ... release unlocked lock" (SparkSession.builder's JVM start is
        # such a fork).
        import concurrent.futures.thread  # noqa: F401
        import logging  # noqa: F401

        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=wait)
        builtins.__import__ = _import_after_the_background_one
        _thread.start()
        return True


_plain_import = builtins.__import__
# At most, so that an import that the background one itself waits for cannot hang the process.
IMPORT_WAIT_SECONDS = 60.0


def _import_after_the_background_one(name, globals=None, locals=None, fromlist=(), level=0):
    """`import` while the background import runs: another thread's import of MLflow or one of its
    modules waits for it first. Python waits for a package being imported elsewhere only when the
    package itself is asked for: `from mlflow.tracking import MlflowClient` would run MLflow's
    modules in two threads at once and fail ("partially initialized module 'mlflow.tracking'")."""
    if level == 0 and (name == "mlflow" or name.startswith("mlflow.")):
        wait(IMPORT_WAIT_SECONDS)
    return _plain_import(name, globals, locals, fromlist, level)


def running() -> bool:
    """Whether the background import is still under way."""
    thread = _thread
    return thread is not None and thread.is_alive()


def wait(timeout: Optional[float] = None) -> None:
    """Until the background import has ended (from any thread but its own)."""
    thread = _thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)


DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy store's


def uri_scheme(uri: Optional[str]) -> str:
    """A tracking URI's scheme without its driver: 'postgresql' for 'postgresql+psycopg2://...'."""
    return str(uri or "").split(":", 1)[0].split("+", 1)[0].lower()


def is_database_uri(uri) -> bool:
    """Whether MLflow keeps runs for this tracking URI in its SQLAlchemy store ('sqlite:///x.db',
    'postgresql+psycopg2://...')."""
    return uri_scheme(uri) in DATABASE_SCHEMES


def _import():
    try:
        import mlflow

        # A database store's module loads SQLAlchemy and maps MLflow's tables at import, and its
        # engine loads the URI's dialect: together about as long again as `import mlflow`. Only
        # imported: no database is opened or created here.
        uri = mlflow.get_tracking_uri()
        if is_database_uri(uri):
            mlflow_private.load_database_store(uri)
    except BaseException:  # the fmin's own import reports what is wrong, where the user sees it
        pass
    finally:
        if builtins.__import__ is _import_after_the_background_one:
            builtins.__import__ = _plain_import
