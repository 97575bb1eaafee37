"""Runs one unmodified SparkTrials fmin on a Spark master given on the command line; prints JSON.

Used by the tests in a fresh interpreter (a local-cluster needs its own SparkContext). The
objective records when it ran and which GPUs it saw, so the test can measure peak concurrency.
Usage: python cluster_scenario.py MASTER PARALLELISM MAX_EVALS SLEEP [key=value ...]
"""

import json
import logging
import os
import sys
import tempfile
import time


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append([record.levelname, record.getMessage()])


def peak_concurrency(intervals):
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def stacked_seconds(runs, executors):
    """Seconds during which an executor ran two trials or more while another ran none, of
    `executors` (the cluster's count; those that ran no trial ran none throughout). `runs`: dicts
    with the trial's start, end and executor."""
    running = {r["executor"]: 0 for r in runs}
    running.update({("idle", index): 0 for index in range(executors - len(running))})
    events = sorted([(r["start"], 1, r["executor"]) for r in runs] +
                    [(r["end"], -1, r["executor"]) for r in runs])
    stacked, last = 0.0, None
    for when, step, executor in events:
        if last is not None and max(running.values()) >= 2 and min(running.values()) == 0:
            stacked += when - last
        running[executor] += step
        last = when
    return stacked


def executor_pid():
    """The pid of the executor JVM running this Python worker (the worker's daemon's parent;
    without PySpark's daemon, the worker's own parent)."""
    parent = os.getppid()
    with open(f"/proc/{parent}/cmdline", "rb") as cmdline:
        if b"java" in cmdline.read().split(b"\0")[0]:
            return parent
    with open(f"/proc/{parent}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def main():
    master, parallelism, max_evals, sleep = sys.argv[1:5]
    settings = dict(kv.split("=", 1) for kv in sys.argv[5:])
    handler = ListHandler()
    logging.getLogger("runtime_ml").addHandler(handler)
    logging.getLogger("runtime_ml").setLevel(logging.INFO)

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).config("spark.ui.enabled", "false")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    record_dir = tempfile.mkdtemp(prefix="runtime-ml-scenario-")
    pause = float(sleep)

    # ---- unmodified user code ----
    from hyperopt import SparkTrials, fmin, hp, rand

    worker_logging = os.environ.get("SCENARIO_WORKER_LOGGING") == "1"

    def objective(x):
        start = time.time()
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
        time.sleep(pause)
        if worker_logging:  # the seeds' pattern: mlflow calls inside the objective
            import mlflow

            if x < 0:
                mlflow.log_param("worker_pid", os.getpid())
                mlflow.log_metric("worker_metric", x)
                mlflow.set_tag("worker_tag", "yes")
                note = os.path.join(tempfile.mkdtemp(), "note.txt")
                with open(note, "w") as out:
                    out.write(f"x={x}")
                mlflow.log_artifact(note)
            else:
                with mlflow.start_run():
                    mlflow.log_param("worker_pid", os.getpid())
        with open(os.path.join(record_dir, f"{start:.6f}-{os.getpid()}.json"), "w") as out:
            json.dump({"start": start, "end": time.time(), "gpus": gpus,
                       "executor": executor_pid()}, out)
        return x ** 2

    trials = SparkTrials(parallelism=None if parallelism == "None" else int(parallelism))
    fmin(objective, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=int(max_evals),
         trials=trials, show_progressbar=False)
    # ---- end of user code ----

    def collect_runs():
        names = os.listdir(record_dir)
        found = [json.load(open(os.path.join(record_dir, name))) for name in names]
        for name in names:
            os.remove(os.path.join(record_dir, name))
        return found

    runs = collect_runs()
    stock_runs = None
    if os.environ.get("SCENARIO_ALSO_STOCK") == "1":
        os.environ["RUNTIME_ML_DISABLED"] = "1"
        fmin(objective, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=int(max_evals),
             trials=SparkTrials(parallelism=int(parallelism)), show_progressbar=False)
        stock_runs = collect_runs()
    spark.stop()
    print(json.dumps({
        "actual_parallelism": getattr(trials, "actual_parallelism", None),
        "trials": len(trials.trials),
        "peak": peak_concurrency([(r["start"], r["end"]) for r in runs]),
        "runs": runs,
        "stock_runs": stock_runs,
        "log": handler.messages,
    }))


if __name__ == "__main__":
    main()
