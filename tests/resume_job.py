"""A tuning job as a user writes it, for the driver-death tests of resume.

  spark-submit resume_job.py RECORD_DIR LABEL
      one fmin of MAX_EVALS trials on the cluster spark-submit gives; prints RESULT {json}.
  python resume_job.py RECORD_DIR LABEL --notebook
      a notebook's kernel on local[2]: the fmin cell runs; when it is interrupted (Ctrl-C), the
      user turns resume on and runs the same cell again.
Every evaluation leaves a file LABEL-<pid>-<time> in RECORD_DIR (LABEL is data the objective
closes over, not its code, so the search stays the same search).
"""

import json
import os
import sys
import time

MAX_EVALS = 16


def main():
    record_dir, label = sys.argv[1], sys.argv[2]
    notebook = "--notebook" in sys.argv
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("resume-job")
    if notebook:
        builder = builder.master("local[2]").config("spark.ui.enabled", "false")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")

    # ---- unmodified user code ----
    from hyperopt import STATUS_OK, SparkTrials, fmin, hp, tpe

    space = {"lr": hp.loguniform("lr", -7, 0), "layers": hp.choice("layers", [1, 2, 3])}

    def train(params):
        time.sleep(1.0)
        with open(os.path.join(record_dir, f"{label}-{os.getpid()}-{time.time():.6f}"), "w"):
            pass
        return {"loss": params["lr"] * params["layers"], "status": STATUS_OK}

    def tune():
        trials = SparkTrials(parallelism=2)
        best = fmin(fn=train, space=space, algo=tpe.suggest, max_evals=MAX_EVALS, trials=trials,
                    show_progressbar=False)
        return best, trials

    if notebook:
        try:
            tune()
        except KeyboardInterrupt:
            print("INTERRUPTED", flush=True)
        label = "again"  # the evaluations of the cell's second run
        spark.conf.set("spark.runtimeml.hyperopt.resume", "true")
    best, trials = tune()
    # ---- end of user code ----
    print("RESULT " + json.dumps({"best": {k: float(v) for k, v in best.items()},
                                  "trials": len(trials.trials)}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
