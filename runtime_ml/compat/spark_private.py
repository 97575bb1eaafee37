"""Spark's private APIs: those reading the cluster uses (py4j calls into the driver's JVM, and
PySpark's handle of a ResourceProfile's JVM object), each guarded by the Spark version where it
changed, the caller (driver/cluster.py) falling back to the conf when one fails and saying so; and
the running SparkContext, which the background MLflow import asks for the tracking switch.

tests/test_cluster.py fails loudly when a Spark upgrade moves one of them.
"""

import sys
from typing import Any, List, NamedTuple

from runtime_ml.compat import versions


class ExecutorSummary(NamedTuple):
    id: str
    host_port: str
    cores: int
    gpus: List[str]


def running_spark_context() -> Any:
    """PySpark's running SparkContext, without starting one and without importing pyspark:
    SparkContext._active_spark_context (private; getOrCreate would start a context). None when
    none runs, pyspark is not loaded, or PySpark moved it (tests/test_compat.py then fails)."""
    context_class = getattr(sys.modules.get("pyspark"), "SparkContext", None)
    return getattr(context_class, "_active_spark_context", None)


def jvm_spark_context(spark_context: Any) -> Any:
    """The JVM's SparkContext behind a PySpark SparkContext."""
    return spark_context._jsc.sc()


def executor_summaries(jvm_context: Any, include_driver: bool) -> List[ExecutorSummary]:
    """The active executors in Spark's status store (the driver's row only if asked: in local
    mode it is the one that runs tasks)."""
    summaries = jvm_context.statusStore().executorList(True)
    found = []
    for index in range(summaries.size()):
        summary = summaries.apply(index)
        if summary.id() == "driver" and not include_driver:
            continue
        gpus = []
        resources = summary.resources()
        if resources.contains("gpu"):
            gpus = [str(a) for a in resources.apply("gpu").addresses()]
        found.append(ExecutorSummary(summary.id(), summary.hostPort(), summary.totalCores(), gpus))
    return found


def max_concurrent_tasks(jvm_context: Any, spark_version: str,
                         resource_profile: Any = None) -> int:
    """Spark's own count of the tasks the registered executors can run at once, for the default
    ResourceProfile or for `resource_profile` (a PySpark ResourceProfile)."""
    if not versions.max_concurrent_tasks_takes_profile(spark_version):
        raise RuntimeError(f"Spark {spark_version} predates maxNumConcurrentTasks(ResourceProfile)")
    if resource_profile is None:
        java_profile = jvm_context.resourceProfileManager().defaultResourceProfile()
    else:
        java_profile = resource_profile._java_resource_profile
    return int(jvm_context.maxNumConcurrentTasks(java_profile))


def one_row_preferring(spark_context: Any, row: Any, preferred: str) -> Any:
    """A PySpark RDD of the one element `row` whose one partition prefers the location `preferred`
    (Spark's TaskLocation string, e.g. executor_<host>_<id>): SparkContext.makeRDD with location
    preferences, which PySpark does not expose."""
    import pickle

    from pyspark import RDD
    from pyspark.serializers import BatchedSerializer, CPickleSerializer

    jvm = spark_context._jvm
    converters = jvm.scala.collection.JavaConverters

    def scala_seq(items):
        java_list = jvm.java.util.ArrayList()
        for item in items:
            java_list.add(item)
        return converters.asScalaBufferConverter(java_list).asScala().toSeq()

    # One batch of one pickled element: what a PySpark worker reads with BatchedSerializer.
    element = jvm.scala.Tuple2(bytearray(pickle.dumps([row])), scala_seq([preferred]))
    byte_array = getattr(jvm.scala.reflect, "ClassTag$").__getattr__("MODULE$").apply(
        jvm.java.lang.Class.forName("[B"))
    java_rdd = jvm_spark_context(spark_context).makeRDD(scala_seq([element]), byte_array)
    return RDD(java_rdd.toJavaRDD(), spark_context, BatchedSerializer(CPickleSerializer(), 1))
