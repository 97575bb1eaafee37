"""An unmodified user job under dynamic allocation: two fmins, the second after Spark has released
the idle executors. Usage: autoscale_job.py TRIALS TRIAL_SECONDS RECORD_DIR

The last line printed is "RESULT <json>": for each fmin its time, when the first trial started on
each host (seconds after fmin was called), the trials per host, the executors registered when it
began, and how long after the first fmin Spark had released every executor.
"""

import json
import os
import sys
import time
from collections import Counter

from hyperopt import STATUS_OK, SparkTrials, fmin, hp, tpe
from job_output import say
from pyspark.sql import SparkSession

trials_per_fmin, seconds, record_dir = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
spark = SparkSession.builder.appName("autoscaling job").getOrCreate()


def executors():
    """Executors registered now (the driver's entry left out)."""
    return spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1


def train(params):
    host = os.environ.get("SPARK_LOCAL_IP", "?")
    started = time.time()
    time.sleep(seconds)
    return {"loss": (params["x"] - 1) ** 2, "status": STATUS_OK, "host": host,
            "started": started}


def one_fmin():
    trials = SparkTrials()
    registered = executors()
    called = time.time()
    fmin(fn=train, space={"x": hp.uniform("x", -3, 3)}, algo=tpe.suggest,
         max_evals=trials_per_fmin, trials=trials, show_progressbar=False)
    results = [t["result"] for t in trials.trials]
    first = {}
    for result in results:
        first[result["host"]] = min(first.get(result["host"], 1e18), result["started"] - called)
    return {"seconds": time.time() - called, "registered_at_start": registered,
            "first_start_per_host": first,
            "trials_per_host": dict(Counter(r["host"] for r in results))}


report = {"fmins": [one_fmin()]}
ended = time.time()
while executors() > 0 and time.time() - ended < 120:
    time.sleep(0.5)
report["released_after"] = time.time() - ended if executors() == 0 else None
report["fmins"].append(one_fmin())
say("RESULT " + json.dumps(report))
spark.stop()
