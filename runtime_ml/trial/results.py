"""What an objective returned, explained when hyperopt rejects it.

hyperopt accepts a number (the loss) or a dict with 'status' and, for STATUS_OK, a numeric 'loss'.
Anything else fails with hyperopt's terse error (KeyError: 'status', a float() conversion error,
raised by `evaluation.hyperopt_result` as by hyperopt's `Domain.evaluate`); the trial stays failed
exactly as in hyperopt, and runtime-ml adds one sentence saying what was returned and what to
return instead. A NaN loss is accepted by hyperopt but ignored when it picks
the best trial; `is_nan_loss` lets tracking report it as a failed trial. `plain` gives numpy values
as the Python values MLflow and JSON take.
"""

import math
import numbers
from collections.abc import Mapping
from typing import Any, Optional

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


def with_result_hint(traceback_text: str, value: Any) -> str:
    """The traceback of hyperopt's rejection of `value` (what the objective returned) with an
    explanation appended to its last line (the error message that MLflow's `error_message` tag and
    hyperopt's trial error show)."""
    problem = result_problem(value)
    if problem is None:
        return traceback_text
    return traceback_text.rstrip("\n") + f" [runtime-ml: {problem}]\n"


def is_nan_loss(result: Optional[dict]) -> bool:
    loss = (result or {}).get("loss")
    return (result or {}).get("status") == "ok" and isinstance(loss, float) and math.isnan(loss)


def plain(value: Any) -> Any:
    """numpy scalars and arrays as plain Python values (floats read back identical from JSON)."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
