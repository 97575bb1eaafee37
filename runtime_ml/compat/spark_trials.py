"""Every attribute of a hyperopt SparkTrials that runtime-ml reads or writes, in one place.

hyperopt's SparkTrials keeps its session, its cancellation state and its resource profile in
private attributes (`_spark`, `_fmin_cancelled`, ...; 0.2.7 and 0.3.0 alike). runtime-ml keeps its
own state on the instance under `_runtime_ml_*` names, and, while its dispatch runs, two methods of
the instance (`insert_trial_docs`, `new_trial_ids`), always undone when the fmin call ends. It sets
the fitted parallelism and the fmin's timeout and loss threshold as hyperopt's fmin does, and
SparkTrials' constructor for a Spark Connect session (`init_on_connect`) sets hyperopt's
attributes as hyperopt's own constructor does. No other module touches these names.

A hyperopt attribute that is missing (hyperopt moved it) is reported through the error policy
(policy.private_name_moved: one warning; raised under strict mode) and its fallback used;
tests/test_compat.py fails loudly when hyperopt moves one of HYPEROPT_ATTRIBUTES.
"""

import logging
from typing import Any, Callable, Optional

from runtime_ml.compat import versions
from runtime_ml.policy import private_name_moved

# Set by SparkTrials.__init__ in every supported hyperopt (runtime-ml's Connect constructor sets
# them too); `_resource_profile` only where SparkTrials takes a resource_profile.
HYPEROPT_ATTRIBUTES = ("_spark", "_spark_supports_job_cancelling", "_fmin_cancelled",
                       "_fmin_cancelled_reason")
REQUESTED_PARALLELISM = "_runtime_ml_requested_parallelism"  # as the user passed it
RESUMPTION = "_runtime_ml_resumption"  # the search trials_from_run loaded (tracking.resume)
OVERRIDDEN = ("insert_trial_docs", "new_trial_ids", "refresh", "count_by_state_unsynced")


def _hyperopt_attribute(trials: Any, name: str, fallback: Any) -> Any:
    """One of HYPEROPT_ATTRIBUTES; when hyperopt moved it, `fallback`, said through the policy."""
    try:
        return getattr(trials, name)
    except AttributeError:
        private_name_moved(f"hyperopt's SparkTrials.{name}", f"runtime-ml goes on with {fallback!r}")
        return fallback


def session(trials: Any) -> Any:
    """The SparkSession the SparkTrials runs on, or None."""
    return _hyperopt_attribute(trials, "_spark", None)


def resource_profile(trials: Any) -> Any:
    """The trials' ResourceProfile (None when not given, or where hyperopt drops it: local).
    Only SparkTrials that take one have the attribute (hyperopt 0.3.0 tells by
    `_spark_supports_resource_profile`)."""
    if "_spark_supports_resource_profile" not in vars(trials):
        return None
    return _hyperopt_attribute(trials, "_resource_profile", None)


def can_cancel_jobs(trials: Any) -> bool:
    """False where hyperopt found that Spark cannot cancel job groups (pinned threads off)."""
    return bool(_hyperopt_attribute(trials, "_spark_supports_job_cancelling", True))


def cancelled(trials: Any) -> bool:
    return bool(_hyperopt_attribute(trials, "_fmin_cancelled", False))


def cancelled_reason(trials: Any) -> Optional[str]:
    return _hyperopt_attribute(trials, "_fmin_cancelled_reason", None)


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


REPLACED = "_runtime_ml_replaced"  # what override() found on the instance, for restore_methods
_ABSENT = object()


def override(trials: Any, **methods: Callable[..., Any]) -> None:
    """Replace OVERRIDDEN methods on the instance (undo with restore_methods)."""
    unknown = set(methods) - set(OVERRIDDEN)
    if unknown:
        raise ValueError(f"not a method runtime-ml overrides: {sorted(unknown)}")
    replaced = trials.__dict__.setdefault(REPLACED, {})
    for name, method in methods.items():
        replaced.setdefault(name, trials.__dict__.get(name, _ABSENT))
        setattr(trials, name, method)


def restore_methods(trials: Any) -> None:
    """Back to what the instance had before override(): the class's methods, or a function set
    on the instance before (idempotent)."""
    for name, before in trials.__dict__.pop(REPLACED, {}).items():
        if before is _ABSENT:
            trials.__dict__.pop(name, None)
        else:
            trials.__dict__[name] = before


def set_parallelism(trials: Any, parallelism: int) -> None:
    """The parallelism runtime-ml fitted to the cluster, where hyperopt reads it (its dispatch
    reads trials.parallelism before each launch; Databricks' runs show actual_parallelism)."""
    trials.parallelism = parallelism
    trials.actual_parallelism = parallelism


def set_fmin_limits(trials: Any, timeout: Any, loss_threshold: Any) -> None:
    """The fmin's timeout (unless the SparkTrials has its own, which wins, as in hyperopt) and
    loss threshold, set on the SparkTrials as hyperopt's SparkTrials.fmin sets them."""
    if timeout is not None and trials.timeout is None:
        trials.timeout = timeout
    if loss_threshold is not None:
        trials.loss_threshold = loss_threshold


hyperopt_logger = logging.getLogger("hyperopt-spark")


def decided_parallelism(trials_class: Any, requested: Any, default_parallelism: int) -> int:
    """hyperopt's SparkTrials._decide_parallelism (a private static method, with its warnings),
    or the same rule when hyperopt moved it: the requested parallelism, Spark's default for None
    or one below 1, capped at MAX_CONCURRENT_JOBS_ALLOWED."""
    decide = getattr(trials_class, "_decide_parallelism", None)
    if decide is not None:
        return decide(requested_parallelism=requested,
                      spark_default_parallelism=default_parallelism)
    private_name_moved("hyperopt's SparkTrials._decide_parallelism",
                       "runtime-ml applies hyperopt's rule itself")
    cap = getattr(trials_class, "MAX_CONCURRENT_JOBS_ALLOWED", 128)
    parallelism = max(default_parallelism, 1) if requested is None or requested <= 0 else requested
    return min(parallelism, cap)


def init_on_connect(trials: Any, spark: Any, parallelism: Any = None, timeout: Any = None,
                    loss_threshold: Any = None, resource_profile: Any = None,
                    default_parallelism: int = 1, master: str = "") -> None:
    """SparkTrials' constructor on a Spark Connect session, where hyperopt's own cannot run (it
    reads `spark.sparkContext` at once, which a Connect session does not have): the same steps
    and attributes as hyperopt's, from what Connect offers; `default_parallelism` stands in for
    sc.defaultParallelism. Jobs are cancelled through operation tags there, so job cancelling is
    supported; a resource profile applies off `local` masters on pyspark 4
    (`mapInArrow(profile=...)`), as stock applies it off `local` masters."""
    import pyspark
    from hyperopt.base import Trials, validate_loss_threshold, validate_timeout

    Trials.__init__(trials, exp_key=None, refresh=False)
    validate_timeout(timeout)
    validate_loss_threshold(loss_threshold)
    trials._spark = spark
    trials._spark_context = None
    trials._spark_pinned_threads_enabled = True
    trials._spark_supports_job_cancelling = True  # spark.interruptTag
    trials.parallelism = decided_parallelism(type(trials), parallelism, default_parallelism)
    if versions.keeps_requested_parallelism(versions.installed_version("hyperopt")):
        trials.user_specified_parallelism = parallelism
    supported = versions.connect_takes_profile(pyspark.__version__) and not master.startswith(
        "local")
    trials._spark_supports_resource_profile = supported
    trials._resource_profile = resource_profile if supported else None
    if resource_profile is not None and not supported:
        hyperopt_logger.warning(
            "SparkTrials was constructed with a ResourceProfile, but this Apache "
            "Spark version does not support stage-level scheduling.")
    trials.timeout = timeout
    trials.loss_threshold = loss_threshold
    trials._fmin_cancelled = False
    trials._fmin_cancelled_reason = None
    trials.refresh()
