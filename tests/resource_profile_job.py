"""A job asking SparkTrials for a ResourceProfile of 2 cpus per trial (hyperopt 0.3.0)."""

import json

from hyperopt import SparkTrials, fmin, hp, rand
from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("resource profile job").getOrCreate()
profile = ResourceProfileBuilder().require(TaskResourceRequests().cpus(2)).build


def train(x):
    from pyspark import TaskContext

    return {"loss": x ** 2, "status": "ok", "cpus": TaskContext.get().cpus()}


trials = SparkTrials(parallelism=4, resource_profile=profile)
fmin(train, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=4, trials=trials)
print("RESULT " + json.dumps({
    "task_cpus": sorted({t["result"]["cpus"] for t in trials.trials}),
    "actual_parallelism": trials.actual_parallelism, "trials": len(trials.trials)}))
spark.stop()
