"""What an objective returned, explained when hyperopt rejects it.

hyperopt accepts a number (the loss) or a dict with 'status' and, for STATUS_OK, a numeric 'loss'.
Anything else fails inside hyperopt with a terse error (KeyError: 'status', a float() conversion
error); the trial stays failed exactly as in hyperopt, and runtime-ml adds one sentence saying what
was returned and what to return instead. A NaN loss is accepted by hyperopt but ignored when it picks
the best trial; `is_nan_loss` lets tracking report it as a failed trial.
"""

import math
import numbers
from collections.abc import Mapping

EXPECTED = "return a number (the loss) or {'loss': <number>, 'status': STATUS_OK}"
STATUS_STRINGS = ("new", "running", "suspended", "ok", "fail")  # hyperopt.STATUS_STRINGS
MAX_SHOWN = 80


def _shown(value):
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def result_problem(value):
    """One sentence on why hyperopt cannot use `value` as a trial result, or None if it can."""
    if isinstance(value, numbers.Number):
        return None
    if not isinstance(value, Mapping):
        return f"the objective returned {type(value).__name__} {_shown(value)}; {EXPECTED}."
    if "status" not in value:
        return f"the objective returned a dict without 'status' ({_shown(value)}); {EXPECTED}."
    status = value["status"]
    if status not in STATUS_STRINGS:
        return (f"the objective returned status={status!r}, which hyperopt does not know; use "
                "STATUS_OK or STATUS_FAIL from hyperopt.")
    if status == "ok":
        if "loss" not in value:
            return f"the objective returned status 'ok' without a 'loss'; {EXPECTED}."
        try:
            float(value["loss"])
        except (TypeError, ValueError):
            return (f"the objective returned loss={_shown(value['loss'])} "
                    f"({type(value['loss']).__name__}); the loss must be a number.")
    return None


def rejected_result(error):
    """(True, value) when `error` was raised by hyperopt's Domain.evaluate while checking the
    value the objective returned (its local `rval`), else (False, None).

    Relies on hyperopt's evaluate keeping the objective's return value in `rval` (0.2.7 and 0.3.0;
    pinned by tests/test_hyperopt_contract.py); anything else simply gives no hint.
    """
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False, None
    frame = tb.tb_frame
    if frame.f_code.co_name != "evaluate" or frame.f_globals.get("__name__") != "hyperopt.base":
        return False, None
    if "rval" not in frame.f_locals:
        return False, None
    return True, frame.f_locals["rval"]


def with_result_hint(traceback_text, error):
    """The trial's traceback with an explanation appended to its last line (the error message
    that MLflow's `error_message` tag and hyperopt's trial error show), when hyperopt rejected
    what the objective returned."""
    rejected, value = rejected_result(error)
    problem = result_problem(value) if rejected else None
    if problem is None:
        return traceback_text
    return traceback_text.rstrip("\n") + f" [runtime-ml: {problem}]\n"


def is_nan_loss(result):
    loss = (result or {}).get("loss")
    return (result or {}).get("status") == "ok" and isinstance(loss, float) and math.isnan(loss)
