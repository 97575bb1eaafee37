"""Wall time of the same fmin with MLflow tracking on vs off, against a real MLflow server.

64 trials of 0.5 s at parallelism 4 on local[4], tracked to `mlflow server` on 127.0.0.1
(sqlite backend), alternating on/off for a few rounds. Target: median ratio on/off <= 1.03.
"""

import argparse
import sys

from common import compare, mlflow_server, quiet_logs, spark_session, timed_fmin
from objectives import sleeper

from runtime_ml.conf import TRACK_HYPEROPT


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    quiet_logs()
    import mlflow

    with mlflow_server() as server:
        mlflow.set_tracking_uri(server.uri)
        mlflow.set_experiment("tracking-overhead")
        spark = spark_session(f"local[{options.parallelism}]")
        objective = sleeper(options.sleep)
        spark.conf.set(TRACK_HYPEROPT.name, "true")
        timed_fmin(spark, "runtime-ml", sleeper(0.2), 2 * options.parallelism,
                   options.parallelism)  # warm up workers and the server (tracked)
        times = {"tracking off": [], "tracking on": []}
        for round_ in range(options.rounds):
            for label, flag in (("tracking off", "false"), ("tracking on", "true")):
                spark.conf.set(TRACK_HYPEROPT.name, flag)
                times[label].append(timed_fmin(spark, "runtime-ml", objective, options.trials,
                                               options.parallelism, seed=round_))
        spark.stop()
        runs = mlflow.MlflowClient(server.uri).search_runs(
            [mlflow.get_experiment_by_name("tracking-overhead").experiment_id],
            max_results=5000)

    print(f"tracking overhead: {options.trials} trials of {options.sleep} s, parallelism "
          f"{options.parallelism}, {options.rounds} alternating rounds, real MLflow server")
    medians = compare(times, "fmin wall time s", "tracking_overhead", "MLflow tracking on vs off")
    expected = options.rounds * (options.trials + 1) + 2 * options.parallelism + 1
    print(f"runs recorded: {len(runs)} (expected {expected})")
    print(f"ratio on/off: {medians['tracking on'] / medians['tracking off']:.3f} (target <= 1.03)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
