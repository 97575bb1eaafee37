"""The two methods runtime-ml patches: `hyperopt.spark.SparkTrials.fmin` and its `__init__`.

`__init__` checks the user's arguments, records the parallelism as given, and builds SparkTrials on
a Spark Connect session (compat.spark_trials.init_on_connect). Every SparkTrials tuning job
crosses `fmin`, whichever `fmin` binding the user holds (`hyperopt.fmin`, `from hyperopt import
fmin` taken before or after activation, `hyperopt.fmin.fmin`, or `trials.fmin(...)`), and nothing
else does: other Trials objects never reach runtime-ml. The wrapper follows MLflow's safe_patch contract:
- the user's exceptions propagate unchanged, and a bad value the user can fix raises UserInputError
  (a ValueError naming the value and the fix) before any trial runs;
- an error in runtime-ml's own code follows runtime_ml.policy: before the first trial launches,
  one warning and hyperopt's own fmin (raised under RUNTIME_ML_STRICT);
- hyperopt's own fmin runs exactly once per call.
"""

import functools
import inspect
import sys
import threading
from types import ModuleType
from typing import Optional

from runtime_ml import conf, log
from runtime_ml.compat import spark_trials, versions
from runtime_ml.patching import mark, original_of
from runtime_ml.policy import FallBackToStock, before_first_launch, report_internal_error

logger = log.logger()


_lock = threading.Lock()


def unsupported_reason(spark_module):
    """Why this hyperopt.spark cannot be patched, or None when it can."""
    for distribution in ("hyperopt", "pyspark"):
        problem = versions.installed_problem(distribution)
        if problem is not None:
            return problem
    trials_class = getattr(spark_module, "SparkTrials", None)
    if trials_class is None or not callable(trials_class.__dict__.get("fmin")):
        return "this hyperopt has no SparkTrials.fmin to patch; SparkTrials left unpatched"
    return None


_said: set = set()


def _say_once(problem):
    """One line per problem and process, however often activation is attempted."""
    if problem not in _said:
        _said.add(problem)
        logger.warning("%s.", problem)


def is_patched(spark_module: Optional[ModuleType] = None) -> bool:
    spark_module = spark_module or sys.modules.get("hyperopt.spark")
    if spark_module is None:
        return False
    return original_of(spark_module.SparkTrials.__dict__.get("fmin")) is not None


def patch_module(spark_module: ModuleType) -> bool:
    """Patch `hyperopt.spark` in place. Idempotent; never raises outside strict mode."""
    if conf.runtime_disabled():
        return False
    try:
        with _lock:
            if is_patched(spark_module):
                return True
            reason = unsupported_reason(spark_module)
            if reason is not None:
                _say_once(reason)
                return False
            mlflow_problem = versions.installed_problem("mlflow")
            if mlflow_problem is not None:
                _say_once(mlflow_problem)
            trials_class = spark_module.SparkTrials
            for name, wrap in _WRAPPERS.items():
                setattr(trials_class, name, wrap(trials_class.__dict__[name]))
    except Exception:
        report_internal_error("patching hyperopt.spark")
        return False
    try:
        from runtime_ml.tracking import preload

        preload.start()
    except Exception:
        report_internal_error("starting MLflow's import in the background")
    return True


def unpatch_module(spark_module: ModuleType) -> None:
    """Put the identical original methods back. Idempotent."""
    with _lock:
        for name in _WRAPPERS:
            current = spark_module.SparkTrials.__dict__.get(name)
            original = original_of(current)
            if original is not None:
                setattr(spark_module.SparkTrials, name, original)


def _wrap_fmin(original):
    @functools.wraps(original)
    def fmin(self, *args, **kwargs):
        return call_through_runtime(original, self, args, kwargs)

    return mark(fmin, original)


def _wrap_init(original):
    """Checks parallelism and timeout before hyperopt sees them, and remembers the parallelism as
    the user gave it (hyperopt 0.2.7 keeps only its own choice)."""

    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        try:
            arguments = signature.bind(self, *args, **kwargs).arguments
        except TypeError:  # the user's call is wrong: hyperopt's own error says how
            return original(self, *args, **kwargs)
        if not conf.runtime_disabled():
            _check_trials_arguments(arguments)
            spark = _connect_session(arguments)
            if spark is not None:
                _init_on_connect(self, spark, arguments)
                spark_trials.remember_requested_parallelism(self, arguments.get("parallelism"))
                return
        original(self, *args, **kwargs)
        spark_trials.remember_requested_parallelism(self, arguments.get("parallelism"))

    return mark(__init__, original)


def _connect_session(arguments):
    """The Spark Connect session a SparkTrials being constructed will run on, found as hyperopt
    finds its session (the one passed, else session.default_session()); None on a classic one,
    which hyperopt's own constructor handles."""
    from runtime_ml.driver import session

    try:
        spark = arguments.get("spark_session") or session.default_session()
        return spark if session.is_connect(spark) else None
    except Exception:  # hyperopt's constructor meets the same problem and reports it its way
        report_internal_error("finding the SparkTrials session")
        return None


def _init_on_connect(trials, spark, arguments):
    """Construct `trials` on the Connect session `spark`, where hyperopt's constructor cannot."""
    from runtime_ml.compat.spark_trials import init_on_connect

    default_parallelism, master = 1, ""
    try:
        from runtime_ml.driver.cluster import read_cluster_facts

        facts = read_cluster_facts(spark)
        default_parallelism, master = facts.default_parallelism or 1, facts.master
    except Exception:
        report_internal_error("reading the cluster over Spark Connect")
    init_on_connect(trials, spark, arguments.get("parallelism"), arguments.get("timeout"),
                    arguments.get("loss_threshold"), arguments.get("resource_profile"),
                    default_parallelism, master)


def _check_trials_arguments(arguments):
    from runtime_ml.errors import UserInputError

    try:
        from runtime_ml.driver import validation

        validation.check_parallelism(arguments.get("parallelism"))
        validation.check_timeout(arguments.get("timeout"))
        note = validation.timeout_note(arguments.get("timeout"))
        if note:
            logger.warning("%s", note)
    except UserInputError:
        raise
    except Exception:
        report_internal_error("checking the SparkTrials arguments")


_WRAPPERS = {"fmin": _wrap_fmin, "__init__": _wrap_init}


def call_through_runtime(original, trials, args, kwargs):
    if conf.runtime_disabled():
        return original(trials, *args, **kwargs)
    try:
        with before_first_launch("preparing the SparkTrials fmin call"):
            from runtime_ml.driver.fmin_call import FminCall

            call = FminCall.begin(original, trials, args, kwargs)
    except FallBackToStock:
        return original(trials, *args, **kwargs)

    try:
        result = call.execute(original)
    except BaseException as error:
        _finish(call, error=error)
        raise
    _finish(call, result=result)
    return result


def _finish(call, result=None, error=None):
    try:
        call.finish(result=result, error=error)
    except Exception:
        report_internal_error("finishing the SparkTrials fmin call")
