"""What runtime-ml does around one SparkTrials fmin call (the patch in `patch.py` calls this)."""

import inspect
import logging

from runtime_ml import conf

logger = logging.getLogger("runtime_ml")


def spark_session_of(trials):
    """The session this SparkTrials runs on (hyperopt keeps it as `_spark`), else the active one.

    Never creates a session.
    """
    spark = getattr(trials, "_spark", None)
    if spark is not None:
        return spark
    try:
        from pyspark.sql import SparkSession

        return SparkSession.getActiveSession()
    except Exception:
        return None


class FminCall:
    """One SparkTrials fmin call: decides what to change before hyperopt runs, and cleans up after."""

    def __init__(self, trials, arguments, args, kwargs):
        self.trials = trials
        self.arguments = arguments  # name -> value, as hyperopt's SparkTrials.fmin received them
        self.args = args
        self.kwargs = kwargs

    @classmethod
    def begin(cls, original, trials, args, kwargs):
        try:
            bound = inspect.signature(original).bind(trials, *args, **kwargs)
        except TypeError:
            # The user's own mistake: hand the call to hyperopt untouched so it reports it.
            return cls(trials, None, args, kwargs)
        bound.apply_defaults()
        call = cls(trials, dict(bound.arguments), args, kwargs)
        call._prepare()
        return call

    def _prepare(self):
        spark = spark_session_of(self.trials)
        self.tracking = conf.read_spark_flag(conf.TRACK_HYPEROPT, spark)
        logger.info(
            "runtime-ml: SparkTrials fmin: max_evals=%s, parallelism=%s",
            self.arguments.get("max_evals"),
            getattr(self.trials, "parallelism", None),
        )
        if not self.tracking.value:
            logger.info(
                "runtime-ml: MLflow tracking of this fmin is off (%s=%s). To turn it on: "
                "spark.conf.set(%r, 'true').",
                conf.TRACK_HYPEROPT.name,
                self.tracking.raw,
                conf.TRACK_HYPEROPT.name,
            )

    def finish(self, result=None, error=None):
        pass
