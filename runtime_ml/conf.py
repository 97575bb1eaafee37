"""Every Spark conf key and environment variable runtime-ml reads, with its default.

Parsing is pure; reading a SparkSession happens only in `read_spark_flag`, which is handed the
session (runtime-ml never creates one), and reading spark-defaults.conf only in
`read_defaults_file`.
"""

from __future__ import annotations

import os

# No logging, dataclasses or typing at import time: the startup hook imports this module in every
# process (the annotations are strings; mypy reads the names below).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional


class Setting:
    __slots__ = ("name", "default", "description")

    def __init__(self, name, default, description):
        self.name = name
        self.default = default
        self.description = description

    def __repr__(self):
        return f"Setting({self.name!r}, default={self.default!r})"


# -- Spark conf keys (spark-defaults.conf, --conf, or spark.conf.set at run time) --
TRACK_HYPEROPT = Setting(
    "spark.databricks.mlflow.trackHyperopt.enabled",
    True,
    "Log every SparkTrials fmin call to MLflow: one parent run per call, one child run per trial.",
)

FRESH_WORKER_PER_TRIAL = Setting(
    "spark.runtimeml.hyperopt.freshWorkerPerTrial",
    False,
    "Run every SparkTrials trial in a fresh Python worker, as stock hyperopt does (isolation over "
    "speed); by default workers are reused and each trial's process state is put back after it.",
)

RESUME = Setting(
    "spark.runtimeml.hyperopt.resume",
    False,
    "Continue an unfinished tuning job from its MLflow runs: an fmin whose space, algorithm and "
    "objective match an earlier parent run that did not finish loads that run's finished trials "
    "and evaluates only the missing ones.",
)

TRIAL_OUTPUT = Setting(
    "spark.runtimeml.hyperopt.trialOutput",
    True,
    "Keep what each trial prints (stdout, stderr, Python logging; its last 64 KB): as the artifact "
    "trial_output.txt of its MLflow run, and its last lines in the driver's warning when it fails.",
)

SEQUENTIAL_AT_ONE = Setting(
    "spark.runtimeml.hyperopt.sequentialAtParallelismOne",
    True,
    "With parallelism 1, propose each SparkTrials trial once the previous trial's result is in, so "
    "the search is hyperopt's sequential one, trial for trial; false proposes it while the previous "
    "trial runs, as stock hyperopt does.",
)

SPREAD_TRIALS = Setting(
    "spark.runtimeml.hyperopt.spreadTrials",
    True,
    "Place each SparkTrials trial on the executor running the fewest of the fmin's trials (classic "
    "Spark, more than one executor, no resource profile); false leaves placement to Spark's "
    "scheduler, as stock hyperopt does.",
)

FAST_TPE = Setting(
    "spark.runtimeml.hyperopt.fastTpe",
    True,
    "Make hyperopt's tpe.suggest proposals with runtime-ml's implementation of it: the same points, "
    "bit for bit, at a cost that does not grow in Python with the number of trials; false calls "
    "hyperopt's tpe.suggest.",
)

# -- Environment variables --
DISABLED = Setting(
    "RUNTIME_ML_DISABLED",
    False,
    "Switch runtime-ml off entirely: hyperopt runs exactly as shipped (for admins and benchmarks).",
)
STRICT = Setting(
    "RUNTIME_ML_STRICT",
    False,
    "Raise runtime-ml's own internal errors instead of logging them and failing open (for tests).",
)

SPARK_CONF_SETTINGS = (TRACK_HYPEROPT, FRESH_WORKER_PER_TRIAL, RESUME, TRIAL_OUTPUT, SEQUENTIAL_AT_ONE,
                       SPREAD_TRIALS, FAST_TPE)

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})


def parse_spark_bool(value: Any) -> Optional[bool]:
    """Spark's own boolean syntax: a Python bool, or 'true'/'false' in any case and padding.

    PySpark stores `spark.conf.set(key, False)` as 'false' (or 'False' on some versions).
    Returns None for anything else, so the caller can say which value was rejected.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "true":
            return True
        if word == "false":
            return False
    return None


def parse_env_flag(value: Optional[str]) -> bool:
    """An environment switch: unset or empty is off; 1/true/yes/on is on; anything else is off."""
    return value is not None and value.strip().lower() in _TRUE_WORDS


def env_flag(setting: Setting, environ: Optional[Mapping[str, str]] = None) -> bool:
    environ = os.environ if environ is None else environ
    return parse_env_flag(environ.get(setting.name))


def runtime_disabled(environ: Optional[Mapping[str, str]] = None) -> bool:
    return env_flag(DISABLED, environ)


def strict_mode(environ: Optional[Mapping[str, str]] = None) -> bool:
    return env_flag(STRICT, environ)


class FlagReading:
    __slots__ = ("value", "source", "raw")

    def __init__(self, value, source, raw=None):
        self.value = value
        self.source = source  # "default" (nothing set, bad value, or no session) or "spark conf"
        self.raw = raw

    def __repr__(self):
        return f"FlagReading({self.value!r}, source={self.source!r}, raw={self.raw!r})"


def read_spark_flag(setting: Setting, spark: Any) -> FlagReading:
    """Read a boolean Spark conf from `spark` (a SparkSession or None) at call time.

    A bad value logs one warning naming the key, the value and the default that is used instead.
    """
    if spark is None:
        return FlagReading(setting.default, "default")
    raw = spark.conf.get(setting.name, None)
    if raw is None:
        return FlagReading(setting.default, "default")
    parsed = parse_spark_bool(raw)
    if parsed is None:
        from runtime_ml import log  # not at the top: the startup hook imports this module

        log.logger().warning(
            "Spark conf %s has the value %r, which is not a boolean; using the "
            "default %s. Set it to true or false (spark.conf.set(%r, 'false')).",
            setting.name,
            raw,
            str(setting.default).lower(),
            setting.name,
        )
        return FlagReading(setting.default, "default", raw)
    return FlagReading(parsed, "spark conf", raw)


def spark_defaults_path(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The spark-defaults.conf a Spark application started here reads, as spark-submit finds it:
    in SPARK_CONF_DIR, else SPARK_HOME/conf, else the installed pyspark's conf (pyspark located,
    not imported)."""
    environ = os.environ if environ is None else environ
    if environ.get("SPARK_CONF_DIR"):
        directory = environ["SPARK_CONF_DIR"]
    elif environ.get("SPARK_HOME"):
        directory = os.path.join(environ["SPARK_HOME"], "conf")
    else:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.origin:
            return None
        directory = os.path.join(os.path.dirname(spec.origin), "conf")
    return os.path.join(directory, "spark-defaults.conf")


def read_defaults_file(path: str) -> Optional[dict]:
    """spark-defaults.conf as a dict (whitespace- or '='-separated, # comments); None when it
    cannot be read."""
    values = {}
    try:
        with open(path) as lines:
            for line in lines:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                key, _, value = line.replace("=", " ", 1).partition(" ")
                values[key.strip()] = value.strip()
    except OSError:
        return None
    return values


def spark_defaults_text() -> str:
    """The runtime's Spark conf keys with their defaults, as spark-defaults.conf lines."""
    lines = ["# runtime-ml: Spark conf keys read by runtime-ml, with their defaults."]
    for setting in SPARK_CONF_SETTINGS:
        value = str(setting.default).lower() if isinstance(setting.default, bool) else setting.default
        lines += [f"# {setting.description}", f"{setting.name} {value}"]
    return "\n".join(lines) + "\n"
