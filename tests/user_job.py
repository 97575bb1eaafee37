"""An unmodified user job, as in the seeds: plain hyperopt, no runtime_ml import, no MLflow set-up."""

import json
import os

from hyperopt import SparkTrials, fmin, hp, tpe
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("tuning job").getOrCreate()


def train(params):
    import mlflow

    mlflow.log_param("executor_pid", os.getpid())
    return (params["x"] - 1) ** 2


trials = SparkTrials()
best = fmin(fn=train, space={"x": hp.uniform("x", -3, 3)}, algo=tpe.suggest, max_evals=6,
            trials=trials)
print("RESULT " + json.dumps({"best": best, "trials": len(trials.trials), "driver_pid": os.getpid(),
                             "tracking_uri": os.environ.get("MLFLOW_TRACKING_URI")}))
spark.stop()
