"""Child runs recorded per second: 512 instant trials at parallelism 8, tracked to a real server.

One fmin on local[8] (after a small tracked warm-up fmin), its trials returning at once, tracked to
`mlflow server` on 127.0.0.1 (sqlite backend). Prints the fmin's wall time, the trial runs it
recorded per second, and whether every run is there, FINISHED, with its loss (nothing lost).
"""

import argparse
import sys
import time

from common import mlflow_server, quiet_logs, spark_session, timed_fmin
from objectives import sleeper


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=512)
    parser.add_argument("--parallelism", type=int, default=8)
    options = parser.parse_args()
    quiet_logs()
    import mlflow

    with mlflow_server() as server:
        mlflow.set_tracking_uri(server.uri)
        spark = spark_session(f"local[{options.parallelism}]", tracking=True)
        mlflow.set_experiment("burst-warm-up")
        timed_fmin(spark, "runtime-ml", sleeper(0.0), 2 * options.parallelism,
                   options.parallelism)
        experiment = mlflow.set_experiment("burst")
        started = time.monotonic()
        seconds = timed_fmin(spark, "runtime-ml", sleeper(0.0), options.trials,
                             options.parallelism)
        returned = time.monotonic() - started
        spark.stop()
        client = mlflow.MlflowClient(server.uri)
        runs = client.search_runs([experiment.experiment_id], max_results=5000)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    complete = [r for r in children if r.info.status == "FINISHED" and "loss" in r.data.metrics]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    print(f"tracking burst: {options.trials} instant trials at parallelism {options.parallelism}, "
          f"real MLflow server on 127.0.0.1")
    print(f"fmin wall time {seconds:.1f} s (returned after {returned:.1f} s, its runs written): "
          f"{len(children) / seconds:.0f} trial runs recorded per second")
    print(f"runs: {len(parents)} parent ({parents[0].info.status if parents else '-'}), "
          f"{len(children)} trial runs, {len(complete)} FINISHED with their loss; "
          f"{'nothing lost' if len(complete) == options.trials else 'RUNS MISSING'}")
    return 0 if len(complete) == options.trials else 1


if __name__ == "__main__":
    sys.exit(main())
