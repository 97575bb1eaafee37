"""A trial document's final states, written as hyperopt's SparkTrials writes them: DONE with its
result, ERROR with hyperopt's (type text, traceback text) tuple, CANCEL with the cancellation."""

from typing import Any

from hyperopt import base
from hyperopt.utils import coarse_utcnow


def write_result(trial: dict, result: dict) -> None:
    """The result first: hyperopt's thread may read the document meanwhile, and a DONE trial's
    loss is read once (driver/fast_tpe.ShownLosses), so DONE never shows without its result."""
    trial["result"] = result
    trial["state"] = base.JOB_STATE_DONE
    trial["refresh_time"] = coarse_utcnow()


def write_error(trial: dict, failure: Any) -> None:
    trial["state"] = base.JOB_STATE_ERROR
    trial["misc"]["error"] = (failure.type_text, failure.recorded_text)
    trial["refresh_time"] = coarse_utcnow()


def write_cancellation(trial: dict, error: BaseException) -> None:
    trial["state"] = base.JOB_STATE_CANCEL
    trial["misc"]["error"] = (str(type(error)), str(error))
    trial["refresh_time"] = coarse_utcnow()
