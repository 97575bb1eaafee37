"""Every attribute of a hyperopt SparkTrials that runtime-ml reads or writes, in one place.

hyperopt's SparkTrials keeps its session, its cancellation state and its resource profile in
private attributes (`_spark`, `_fmin_cancelled`, ...; 0.2.7 and 0.3.0 alike). runtime-ml keeps its
own state on the instance under `_runtime_ml_*` names, and, while its dispatch runs, two methods of
the instance (`insert_trial_docs`, `new_trial_ids`), always undone when the fmin call ends. No
other module touches these names, but driver/connect_trials.py: SparkTrials' constructor for a
Spark Connect session sets hyperopt's attributes as hyperopt's own constructor does.
tests/test_compat.py fails loudly when hyperopt moves one of HYPEROPT_ATTRIBUTES.
"""

from typing import Any, Callable, Optional

# Set by SparkTrials.__init__ in every supported hyperopt (runtime-ml's Connect constructor sets
# them too); `_resource_profile` only where SparkTrials takes a resource_profile.
HYPEROPT_ATTRIBUTES = ("_spark", "_spark_supports_job_cancelling", "_fmin_cancelled",
                       "_fmin_cancelled_reason")
REQUESTED_PARALLELISM = "_runtime_ml_requested_parallelism"  # as the user passed it
RESUMPTION = "_runtime_ml_resumption"  # the search trials_from_run loaded (tracking.resume)
OVERRIDDEN = ("insert_trial_docs", "new_trial_ids")


def session(trials: Any) -> Any:
    """The SparkSession the SparkTrials runs on, or None."""
    return getattr(trials, "_spark", None)


def resource_profile(trials: Any) -> Any:
    """The trials' ResourceProfile (None when not given, or where hyperopt drops it: local)."""
    return getattr(trials, "_resource_profile", None)


def can_cancel_jobs(trials: Any) -> bool:
    """False where hyperopt found that Spark cannot cancel job groups (pinned threads off)."""
    return bool(getattr(trials, "_spark_supports_job_cancelling", True))


def cancelled(trials: Any) -> bool:
    return bool(getattr(trials, "_fmin_cancelled", False))


def cancelled_reason(trials: Any) -> Optional[str]:
    return getattr(trials, "_fmin_cancelled_reason", None)


def mark_cancelled(trials: Any, reason: str) -> bool:
    """Record the fmin's cancellation as hyperopt does; True the first time."""
    if cancelled(trials):
        return False
    trials._fmin_cancelled = True
    trials._fmin_cancelled_reason = reason
    return True


def remember_requested_parallelism(trials: Any, value: Any) -> None:
    setattr(trials, REQUESTED_PARALLELISM, value)


def requested_parallelism(trials: Any) -> Any:
    """The parallelism as the user passed it to SparkTrials (None when not given)."""
    if hasattr(trials, REQUESTED_PARALLELISM):
        return getattr(trials, REQUESTED_PARALLELISM)
    if hasattr(trials, "user_specified_parallelism"):  # hyperopt >= 0.3.0
        return trials.user_specified_parallelism
    return getattr(trials, "parallelism", None)


def mark_resumption(trials: Any, resumption: Any) -> None:
    setattr(trials, RESUMPTION, resumption)


def resumption(trials: Any) -> Any:
    """What trials_from_run loaded into these trials, or None."""
    return getattr(trials, RESUMPTION, None)


def override(trials: Any, **methods: Callable[..., Any]) -> None:
    """Replace OVERRIDDEN methods on the instance (undo with restore_methods)."""
    unknown = set(methods) - set(OVERRIDDEN)
    if unknown:
        raise ValueError(f"not a method runtime-ml overrides: {sorted(unknown)}")
    for name, method in methods.items():
        setattr(trials, name, method)


def restore_methods(trials: Any) -> None:
    """Back to the class's methods (idempotent)."""
    for name in OVERRIDDEN:
        trials.__dict__.pop(name, None)
