"""Checks of what the user passed to SparkTrials and fmin, before any trial or run starts.

Each check is a pure function over plain values that either returns the value to use or raises
where hyperopt would fail too, with hyperopt's exception type and message first and the fix after
it. Values hyperopt accepts stay accepted (parallelism <= 0 means "the default", 2.5 is 3, with a
warning from the parallelism decision).
"""

import math
import numbers

from runtime_ml.driver.parallelism import normalize_request
from runtime_ml.errors import UserInputError, UserInputTypeError, with_advice


def check_parallelism(value):
    """SparkTrials(parallelism=...): what hyperopt accepts (see parallelism.normalize_request)."""
    return normalize_request(value)[0]


def check_timeout(value):
    """SparkTrials(timeout=...): what hyperopt's validate_timeout accepts, as the value to use.

    hyperopt rejects non-numbers, bools and values <= 0 with a plain Exception; runtime-ml raises
    the same message first, with the fix after it. NaN passes hyperopt's check and never times out:
    it stays accepted, and `timeout_note` says so.
    """
    if value is None:
        return None
    number = isinstance(value, numbers.Number) and not isinstance(value, bool)
    if not number or value <= 0:
        raise UserInputError(with_advice(
            f"The timeout argument should be None or a positive value. Given value: {value}",
            f"timeout={value!r}: pass a positive number of seconds, e.g. "
            "SparkTrials(timeout=3600), or None for no limit."))
    return value


def timeout_note(value):
    """A warning for a timeout hyperopt accepts but never applies (NaN), else None."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value):
        return (f"timeout={value!r} is not a number of seconds, so no timeout applies (as in "
                "hyperopt). Pass a positive number, e.g. SparkTrials(timeout=3600), or None.")
    return None


NO_EVALUATIONS = "There are no evaluation tasks, cannot return argmin of task losses."


def check_max_evals(value, trials_so_far, return_argmin=True):
    """fmin(max_evals=...): None (no limit), or a whole number of trials.

    Raises only where hyperopt's fmin fails too, with hyperopt's exception type and message first:
    a max_evals that is not a whole number (hyperopt's TypeError, after running some trials), and
    one that evaluates nothing when fmin must return an argmin. A SparkTrials that already holds
    trials may be passed max_evals up to that count: hyperopt then returns the best of them.
    """
    if value is None:
        return None
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        whole = True  # 64.0 works in hyperopt, so it stays allowed
    if not whole:
        raise UserInputTypeError(with_advice(
            f"'{type(value).__name__}' object cannot be interpreted as an integer",
            f"fmin(max_evals={value!r}): max_evals must be a whole number of trials, e.g. "
            "max_evals=64."))
    if value < 1 and trials_so_far == 0 and return_argmin:
        raise UserInputError(with_advice(
            NO_EVALUATIONS,
            f"fmin(max_evals={value!r}) evaluates nothing. Pass max_evals=1 or more (the total "
            "number of trials to run)."))
    return int(value)


def serialize_objective(fn):
    """The objective as the bytes that travel to the executors once per fmin.

    Pickled here with PySpark's own cloudpickle, so an objective that cannot travel is reported
    before any trial or MLflow run starts.
    """
    from pyspark import cloudpickle  # the pickler PySpark itself uses for tasks

    try:
        return cloudpickle.dumps(fn)
    except Exception as error:
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        raise UserInputError(
            f"the objective {name!r} cannot be sent to the Spark executors: pickling it failed "
            f"with {type(error).__name__}: {error}. Everything the objective refers to must be "
            "picklable. Create database clients, locks and open files inside the objective, and "
            "load data there from a path; the driver's SparkSession, SparkContext and DataFrames "
            "cannot be used inside the objective at all (it runs on an executor): collect the "
            "data the objective needs on the driver first, e.g. df.toPandas(), and refer to that."
        ) from error


LARGE_OBJECTIVE_BYTES = 1 << 30


def objective_size_note(size):
    """(level, text) for the log line on the pickled objective's size: info, or above about
    1 GB a warning with the fix."""
    shown = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.1f} KB"
    text = f"the objective is {shown} pickled; it is sent to the executors once for this fmin."
    if size <= LARGE_OBJECTIVE_BYTES:
        return "info", text
    return "warning", (text + " At this size every Python worker holds a copy and the driver "
                       "sends it to every executor: load the data inside the objective from "
                       "storage (a path every executor can read) instead of closing over it.")
