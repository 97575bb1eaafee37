"""The support matrix, and which code path each version takes.

Everything version-dependent in runtime-ml asks here; with spark_trials.py (hyperopt's SparkTrials
attributes), spark_private.py (the py4j calls into the driver's JVM) and mlflow_private.py
(MLflow's private calls), the compatibility story is in this one package. tests/test_compat.py
states every path per version and runs the installed version's path. Versions are read from
package metadata (no import of the packages themselves).
"""

import re
from typing import Optional, Tuple

# The support matrix, as setup.py's install_requires states it (tests/test_compat.py compares).
SUPPORTED = {"hyperopt": ">=0.2.7,<0.4", "pyspark": ">=3.5,<5", "mlflow": ">=2.9,<4"}
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
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        have = Version(found)
    except InvalidVersion:
        return None  # not a version packaging can order: the benefit of the doubt too
    for spec in SpecifierSet(SUPPORTED[distribution]):
        if not spec.contains(have, prereleases=True):  # a release candidate of 0.3 is 0.3's
            if spec.operator.startswith(">"):
                return (f"{distribution} {found} is older than the supported {spec.version}; "
                        f"{NEEDED_FOR[distribution]}")
            return (f"{distribution} {found} is newer than the supported {spec.operator} "
                    f"{spec.version}; {NEEDED_FOR[distribution]}")
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


# Spark 4.1 lets executors talk to their Python workers over Unix domain sockets
# (spark.python.unix.domain.socket.enabled); before, only over TCP.
def python_workers_take_unix_sockets(spark_version: Optional[str]) -> bool:
    return version_tuple(spark_version) >= (4, 1)


# runtime-ml's fast TPE (driver/fast_tpe.py) repeats hyperopt's tpe.suggest step for step around
# hyperopt's own graph; tests/test_fast_tpe.py proves its proposals identical on these versions.
# On any other, hyperopt's tpe.suggest runs.
FAST_TPE_VERIFIED = ((0, 2, 7), (0, 3, 0))


def fast_tpe_verified(hyperopt_version: Optional[str]) -> bool:
    return version_tuple(hyperopt_version) in FAST_TPE_VERIFIED
