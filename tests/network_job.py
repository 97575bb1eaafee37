"""An unmodified user job for the test hosts: plain hyperopt, and an objective that calls MLflow's
fluent API on its executor. Usage: network_job.py MAX_EVALS TRIAL_SECONDS RECORD_DIR

Each objective call appends "host x" to RECORD_DIR/calls (the hosts share this file system), so a
test can count how often each trial's objective ran and where. The last line printed is
"RESULT <json>": every trial's id, state, host and error, and the fmin's own time.

With NETWORK_JOB_LEGS (a JSON list of [name, tracking URI]) the same driver runs one fmin per
leg, in order, as a user who points MLFLOW_TRACKING_URI elsewhere between two fmins: each leg
starts with the line "LEG <name>", records into RECORD_DIR/<name>/ and ends with its RESULT line.
"""

import json
import os
import sys
import time

from hyperopt import STATUS_OK, SparkTrials, fmin, hp, tpe
from job_output import say
from pyspark.sql import SparkSession

max_evals, seconds, record_dir = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
spark = SparkSession.builder.appName("network job").getOrCreate()


def train(params):
    import mlflow

    host = os.environ.get("SPARK_LOCAL_IP", "?")
    with open(os.path.join(record_dir, "calls"), "a") as calls:
        calls.write(f"{host} {params['x']!r}\n")
    started = time.monotonic()
    mlflow.log_param("host", host)
    mlflow.log_metric("x_seen", params["x"])
    mlflow_seconds = time.monotonic() - started
    time.sleep(seconds)
    return {"loss": (params["x"] - 1) ** 2, "status": STATUS_OK, "host": host,
            "mlflow_seconds": mlflow_seconds}


def tune(record):
    global record_dir
    record_dir = record
    trials = SparkTrials()
    started = time.monotonic()
    error = None
    try:
        fmin(fn=train, space={"x": hp.uniform("x", -3, 3)}, algo=tpe.suggest,
             max_evals=max_evals, trials=trials)
    except Exception as raised:  # reported in RESULT: some scenarios end with every trial failed
        error = f"{type(raised).__name__}: {raised}"
    elapsed = time.monotonic() - started
    say("RESULT " + json.dumps({
        "seconds": elapsed, "error": error,
        "trials": [{"tid": t["tid"], "state": t["state"], "x": t["misc"]["vals"]["x"][0],
                    "host": (t.get("result") or {}).get("host"),
                    "mlflow_seconds": (t.get("result") or {}).get("mlflow_seconds"),
                    "error": (t.get("misc") or {}).get("error")}
                   # every trial, failed ones too (trials.trials holds only NEW, RUNNING, DONE)
                   for t in trials._dynamic_trials]}))


legs = json.loads(os.environ.get("NETWORK_JOB_LEGS", "null"))
if legs is None:
    tune(record_dir)
else:
    for name, tracking_uri in legs:
        say(f"LEG {name}")
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        os.mkdir(os.path.join(record_dir, name))
        tune(os.path.join(record_dir, name))
spark.stop()
