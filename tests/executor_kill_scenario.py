"""An unmodified SparkTrials fmin on local-cluster[2,1,1024] while one executor JVM is SIGKILLed.

Run by tests/test_reliability.py in a fresh interpreter (a local-cluster needs its own
SparkContext), tracked to the MLflow server in MLFLOW_TRACKING_URI. The killer waits until trials
are running on both executors, then kills one executor JVM by its PID; Spark retries the lost task
and the local-cluster worker starts a new executor. Prints one JSON line.
Usage: python executor_kill_scenario.py MARKER_DIR
"""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

MAX_EVALS = 8


def executor_pids(app_id):
    """PIDs of this application's executor JVMs (CoarseGrainedExecutorBackend --app-id <id>)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [part.decode(errors="replace") for part in argv]
        if any(w.endswith("CoarseGrainedExecutorBackend") for w in words) and app_id in words:
            found.append(int(entry.name))
    return sorted(found)


def kill_one_executor_when_busy(app_id, marker_dir, outcome):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = list(Path(marker_dir).glob("started-*"))
        pids = executor_pids(app_id)
        if len(started) >= 3 and len(pids) == 2:  # past the first trials, both executors busy
            outcome["executors_before"] = pids
            os.kill(pids[0], signal.SIGKILL)
            outcome["killed_pid"] = pids[0]
            return
        time.sleep(0.05)


def main():
    marker_dir = sys.argv[1]
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local-cluster[2,1,1024]")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    outcome = {"killed_pid": None}
    killer = threading.Thread(target=kill_one_executor_when_busy,
                              args=(spark.sparkContext.applicationId, marker_dir, outcome))
    killer.start()

    # ---- unmodified user code ----
    import numpy as np
    from hyperopt import SparkTrials, fmin, hp, rand

    def objective(x):
        import mlflow

        Path(marker_dir, f"started-{os.getpid()}-{time.time()}").touch()
        time.sleep(1.0)
        mlflow.log_metric("attempt_pid", os.getpid())  # re-logged by a retried attempt: allowed
        return (x - 0.3) ** 2

    trials = SparkTrials(parallelism=2)
    best = fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=MAX_EVALS,
                trials=trials, rstate=np.random.default_rng(0), show_progressbar=False)
    # ---- end of user code ----

    killer.join()
    outcome.update(
        best=best,
        states=sorted(t["state"] for t in trials.trials),
        tids=sorted(t["tid"] for t in trials.trials),
        successful=trials.count_successful_trials(),
        executors_after=executor_pids(spark.sparkContext.applicationId),
    )
    spark.stop()
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
