"""How a function runtime-ml puts in another package's place carries the original: one attribute
name, for hyperopt's SparkTrials methods (driver/patch.py) and MLflow's start_run inside a trial
(worker/trial_run.py), so a patch is found, undone and never applied twice."""

from typing import Any, Callable, Optional

ORIGINAL_ATTR = "__runtime_ml_original__"


def mark(wrapper: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    """`wrapper`, marked as standing in for `original`."""
    setattr(wrapper, ORIGINAL_ATTR, original)
    return wrapper


def original_of(function: Any) -> Optional[Callable[..., Any]]:
    """What `function` stands in for, or None when it is no patch of runtime-ml's."""
    return getattr(function, ORIGINAL_ATTR, None)
