"""The SparkSession seam: what runtime-ml asks of a session, classic (py4j) or Spark Connect.

The fmin call and tracking take the session through here (or through the launcher this module
picks), so they need not know which kind it holds nor reach for `sparkContext`, which a Connect
session does not have. Two modules hold the classic side of the seam: launcher.ClassicLauncher,
and cluster (read_cluster_facts, executor_slots), which asks the driver's JVM for executors and
slots.
"""

from typing import Any, Optional

from runtime_ml.driver import launcher


def is_connect(spark):
    """True for a Spark Connect session (`pyspark.sql.connect`), without importing Connect."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def conf_get(spark: Any, key: str, default: Optional[str] = None) -> Optional[str]:
    """A Spark conf value as a string, or `default`: static confs too, on both kinds."""
    if is_connect(spark):
        value = spark.conf.get(key, None)
        return default if value is None else value
    return spark.sparkContext.getConf().get(key, default)


def default_session():
    """The session SparkTrials uses when none is passed: as stock, `SparkSession.builder
    .getOrCreate()`, except that an active Spark Connect session is taken as it is (its builder
    cannot find it again without the server's address)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and is_connect(active):
        return active
    return SparkSession.builder.getOrCreate()


def launcher_for(spark, resource_profile=None, job_cancelling=True, read_executors=None):
    """The launcher that runs trials as Spark jobs on this kind of session (`read_executors`: the
    executors to spread trials over, where the kind allows it; see launcher.ClassicLauncher)."""
    if is_connect(spark):
        return launcher.ConnectLauncher(spark, resource_profile)
    return launcher.ClassicLauncher(spark, resource_profile, job_cancelling, read_executors)
