"""Checks of what the user passed to SparkTrials and fmin, before any trial or run starts.

Each check is a pure function over plain values that either returns the value to use or raises
UserInputError with a message naming the bad value and the fix. Values hyperopt accepts stay
accepted (parallelism <= 0 means "the default", with a warning from the parallelism decision).
"""

import math
import numbers

from runtime_ml.errors import UserInputError
from runtime_ml.parallelism import normalize_request


def check_parallelism(value):
    """SparkTrials(parallelism=...): None, or a whole number (<= 0 falls back to the default)."""
    return normalize_request(value)


def check_timeout(value):
    """SparkTrials(timeout=...) and fmin(timeout=...): None or a positive number of seconds."""
    if value is None:
        return None
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not number or math.isnan(value) or value <= 0:
        raise UserInputError(
            f"timeout={value!r}: the timeout must be a positive number of seconds, e.g. "
            "SparkTrials(timeout=3600), or None for no limit."
        )
    return value


def check_max_evals(value, trials_so_far):
    """fmin(max_evals=...): None (no limit), or a whole number that leaves something to evaluate.

    A SparkTrials that already holds trials may be passed max_evals up to that count: hyperopt then
    returns the best of them without running anything, so that stays allowed.
    """
    if value is None:
        return None
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        whole = True  # 64.0 works in hyperopt, so it stays allowed
    if not whole:
        raise UserInputError(
            f"fmin(max_evals={value!r}): max_evals must be a whole number of trials, e.g. "
            "max_evals=64."
        )
    if value < 1 and trials_so_far == 0:
        raise UserInputError(
            f"fmin(max_evals={value!r}): nothing would be evaluated. Pass max_evals=1 or more "
            "(the total number of trials to run)."
        )
    return int(value)


def serialize_objective(fn, space):
    """The objective and space as the bytes every trial's Spark task carries.

    Pickled once per fmin here (not once per trial by Spark), so an objective that cannot travel
    to the executors is reported before any trial or MLflow run starts.
    """
    from pyspark import cloudpickle  # the pickler PySpark itself uses for tasks

    try:
        return cloudpickle.dumps((fn, space))
    except Exception as error:
        name = getattr(fn, "__qualname__", None) or type(fn).__name__
        raise UserInputError(
            f"the objective {name!r} cannot be sent to the Spark executors: pickling it failed "
            f"with {type(error).__name__}: {error}. Everything the objective refers to must be "
            "picklable: create Spark sessions, database clients, locks and open files inside the "
            "objective, or load data there from a path."
        ) from error
