"""SparkTrials' constructor on a Spark Connect session, where hyperopt's own cannot run.

hyperopt's `SparkTrials.__init__` reads `spark.sparkContext` at once, which a Connect session does
not have (`JVM_ATTRIBUTE_NOT_SUPPORTED`). On such a session the patched constructor calls
`init_on_connect` instead: the same steps and attributes as hyperopt's, from what Connect offers.
Jobs are cancelled through operation tags there, so job cancelling is supported; a resource
profile applies off `local` masters on pyspark 4 (`mapInArrow(profile=...)`), as stock applies it
off `local` masters.
"""

import logging

from hyperopt.base import Trials, validate_loss_threshold, validate_timeout

from runtime_ml.compat import versions

hyperopt_logger = logging.getLogger("hyperopt-spark")


def init_on_connect(trials, spark, parallelism=None, timeout=None, loss_threshold=None,
                    resource_profile=None, default_parallelism=1, master=""):
    """Set up `trials` (a SparkTrials) on the Connect session `spark` as hyperopt's constructor
    would on a classic one; `default_parallelism` stands in for sc.defaultParallelism."""
    Trials.__init__(trials, exp_key=None, refresh=False)
    validate_timeout(timeout)
    validate_loss_threshold(loss_threshold)
    trials._spark = spark
    trials._spark_context = None
    trials._spark_pinned_threads_enabled = True
    trials._spark_supports_job_cancelling = True  # spark.interruptTag
    trials.parallelism = type(trials)._decide_parallelism(
        requested_parallelism=parallelism, spark_default_parallelism=default_parallelism)
    if versions.keeps_requested_parallelism(versions.installed_version("hyperopt")):
        trials.user_specified_parallelism = parallelism
    import pyspark

    trials._spark_supports_resource_profile = (
        versions.connect_takes_profile(pyspark.__version__) and not master.startswith("local"))
    trials._resource_profile = resource_profile if trials._spark_supports_resource_profile else None
    if resource_profile is not None and trials._resource_profile is None:
        hyperopt_logger.warning(
            "SparkTrials was constructed with a ResourceProfile, but this Apache "
            "Spark version does not support stage-level scheduling.")
    trials.timeout = timeout
    trials.loss_threshold = loss_threshold
    trials._fmin_cancelled = False
    trials._fmin_cancelled_reason = None
    trials.refresh()
