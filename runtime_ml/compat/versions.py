"""The support matrix, and which code path each version takes.

Everything version-dependent in runtime-ml asks here; with spark_trials.py (hyperopt's SparkTrials
attributes), spark_private.py (the py4j calls into the driver's JVM) and mlflow_private.py
(MLflow's private calls), the compatibility story is in this one package. tests/test_compat.py
states every path per version and runs the installed version's path. Versions are read from
package metadata (no import of the packages themselves).
"""

import re
import sys
from typing import Any, List, Optional, Tuple

# (oldest supported, first unsupported); kept equal to setup.py's install_requires.
SUPPORTED = {
    "hyperopt": ((0, 2, 7), (0, 4)),
    "pyspark": ((3, 5, 0), (5,)),
    "mlflow": ((2, 9, 0), (4,)),
}
# What each part needs: without hyperopt and pyspark nothing is patched; without mlflow, tracking.
NEEDED_FOR = {"hyperopt": "SparkTrials left unpatched", "pyspark": "SparkTrials left unpatched",
              "mlflow": "MLflow tracking is off"}


def version_tuple(text: Optional[str]) -> Tuple[int, ...]:
    """'3.5' -> (3, 5, 0); '0.3.0rc1' -> (0, 3, 0); '4.0.0.dev1' -> (4, 0, 0)."""
    parts = []
    for piece in (text or "").split(".")[:3]:
        match = re.match(r"\d+", piece)
        parts.append(int(match.group()) if match else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def _dotted(parts):
    return ".".join(map(str, parts))


def installed_version(distribution: str) -> Optional[str]:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8 is not supported anyway
        return None
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def support_problem(distribution: str, found: Optional[str]) -> Optional[str]:
    """One line on why `found` of `distribution` is outside the matrix, or None when it is in.

    An unknown version (None: not installed as a distribution, e.g. a source checkout) is given the
    benefit of the doubt.
    """
    if found is None:
        return None
    oldest, first_unsupported = SUPPORTED[distribution]
    have = version_tuple(found)
    if have < oldest:
        return (f"{distribution} {found} is older than the supported {_dotted(oldest)}; "
                f"{NEEDED_FOR[distribution]}")
    if have[: len(first_unsupported)] >= first_unsupported:
        return (f"{distribution} {found} is newer than the supported "
                f"< {_dotted(first_unsupported)}; {NEEDED_FOR[distribution]}")
    return None


def installed_problem(distribution: str) -> Optional[str]:
    return support_problem(distribution, installed_version(distribution))


# ---------------------------------------------------------------- the version-dependent paths

# Spark 3.1 changed SparkContext.maxNumConcurrentTasks to take a ResourceProfile (hyperopt issue
# 798); the call is private, so cluster.py guards it and falls back to the conf when it fails.
def max_concurrent_tasks_takes_profile(spark_version: Optional[str]) -> bool:
    return version_tuple(spark_version) >= (3, 1)


# hyperopt 0.3.0's SparkTrials checks early_stop_fn in its dispatcher after each successful trial
# and cancels the running ones; 0.2.7 hands it to fmin's loop, which stops proposing and lets the
# running trials finish (and the fmin is not "cancelled").
def early_stop_cancels_trials(hyperopt_version: Optional[str]) -> bool:
    return version_tuple(hyperopt_version) >= (0, 3)


# hyperopt 0.3.0's SparkTrials keeps the parallelism as the user passed it
# (user_specified_parallelism); 0.2.7 keeps only its own choice.
def keeps_requested_parallelism(hyperopt_version: Optional[str]) -> bool:
    return version_tuple(hyperopt_version) >= (0, 3)


# Spark Connect's mapInArrow takes profile= (a ResourceProfile) from pyspark 4.0.
def connect_takes_profile(spark_version: Optional[str]) -> bool:
    return version_tuple(spark_version) >= (4,)


# MLflow 3's UI has a GenAI view besides the runs view, and opens an experiment in it unless the
# link asks for the machine-learning workflow; the experiment's `mlflow.experimentKind` tag labels
# the experiment. MLflow 2 has the runs view only.
def mlflow_ui_has_genai_view(mlflow_version: Optional[str]) -> bool:
    return version_tuple(mlflow_version) >= (3,)


# pyspark 4 added the session argument to inheritable_thread_target (for Spark Connect job tags);
# 3.5 takes the function directly.
def thread_target_takes_session(spark_version: Optional[str]) -> bool:
    return version_tuple(spark_version) >= (4,)


# MLflow keeps what mlflow.set_tracking_uri and mlflow.set_experiment chose in private module
# globals (mlflow 2.9 to 3.x). A reused Python worker puts them back after each trial; read from
# sys.modules only, so nothing is imported. When they move, set_tracking_uri is the fallback for the
# URI, and the experiment is left as the trial set it; tests/test_compat.py fails loudly.
MLFLOW_TRACKING_URI_GLOBAL = ("mlflow.tracking._tracking_service.utils", "_tracking_uri")
MLFLOW_EXPERIMENT_GLOBAL = ("mlflow.tracking.fluent", "_active_experiment_id")
_MISSING = object()


def _mlflow_global(where):
    module = sys.modules.get(where[0])
    return _MISSING if module is None else getattr(module, where[1], _MISSING)


def mlflow_fluent_state() -> Tuple[Any, Any]:
    """(tracking URI, experiment id) as set in this process, None for unset or mlflow not loaded."""
    uri, experiment = (_mlflow_global(where)
                       for where in (MLFLOW_TRACKING_URI_GLOBAL, MLFLOW_EXPERIMENT_GLOBAL))
    return (None if uri is _MISSING else uri, None if experiment is _MISSING else experiment)


def restore_mlflow_fluent_state(state: Tuple[Any, Any]) -> None:
    if "mlflow" not in sys.modules or mlflow_fluent_state() == state:
        return
    for where, value in zip((MLFLOW_TRACKING_URI_GLOBAL, MLFLOW_EXPERIMENT_GLOBAL), state):
        if _mlflow_global(where) is not _MISSING:
            setattr(sys.modules[where[0]], where[1], value)
        elif where is MLFLOW_TRACKING_URI_GLOBAL and value is not None:
            sys.modules["mlflow"].set_tracking_uri(value)


# hyperopt's Trials.new_trial_ids hands out ids from len(self._ids) on (0.2.7 and 0.3.0), so
# trials loaded with gaps in their ids (a trial that never finished) would get an id handed out
# again. Reserving every id below the highest loaded one in that private set keeps the loaded
# trials' own ids; when it moves, the loaded trials are numbered 0..n-1 instead (their runs keep
# their trial_id tags). tests/test_compat.py fails loudly when it moves.
def keep_trial_ids(trials: Any, tids: List[int]) -> List[int]:
    """The ids to give loaded trials: their own, or 0..n-1 when hyperopt's counter moved."""
    ids = trials.__dict__.get("_ids")
    if not isinstance(ids, set) or not tids:
        return list(range(len(tids)))
    ids.update(range(max(tids) + 1))
    return list(tids)


# hyperopt's fmin loop waits until Trials.count_by_state_unsynced counts no NEW or RUNNING trial; it
# counts the documents in the private Trials._dynamic_trials (0.2.7 and 0.3.0), which hold a
# document from insert_trial_docs on, before the next refresh() puts it in the public
# `trials.trials`. The dispatcher launches and cancels exactly what hyperopt counts; when that list
# moves, the refreshed `trials.trials` is the fallback and tests/test_compat.py fails loudly.
def unsynced_trial_docs(trials: Any) -> List[dict]:
    """A copy of the list of every trial document hyperopt counts as this fmin's, refreshed or
    not (the copy is safe to walk while hyperopt's thread inserts)."""
    docs = trials.__dict__.get("_dynamic_trials")
    if not isinstance(docs, list):
        return list(trials.trials)
    exp_key = getattr(trials, "_exp_key", None)
    docs = list(docs)
    return docs if exp_key is None else [doc for doc in docs if doc.get("exp_key") == exp_key]
