"""Trials per second with short trials: stock SparkTrials vs runtime-ml, alternating in one run.

Default: 0.05 s trials, parallelism 4, 64 trials, 3 rounds on local[4]. Target: ratio >= 5.
"""

import argparse
import statistics
import sys

from common import MODES, compare, quiet_logs, spark_session, timed_fmin
from objectives import sleeper

FRESH_WORKER = "spark.runtimeml.hyperopt.freshWorkerPerTrial"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    quiet_logs()
    spark = spark_session(f"local[{options.parallelism}]")
    objective = sleeper(options.sleep)
    timed_fmin(spark, "runtime-ml", objective, 4, options.parallelism)  # warm the JVM and workers
    rates = {mode: [] for mode in MODES}
    for round_ in range(options.rounds):
        for mode in MODES:
            elapsed = timed_fmin(spark, mode, objective, options.trials, options.parallelism,
                                 seed=round_)
            rates[mode].append(options.trials / elapsed)
    # The isolation switch: a fresh Python worker per trial, as stock has.
    spark.conf.set(FRESH_WORKER, "true")
    fresh = [options.trials / timed_fmin(spark, "runtime-ml", objective, options.trials,
                                         options.parallelism, seed=round_)
             for round_ in range(options.rounds)]
    spark.conf.unset(FRESH_WORKER)
    spark.stop()

    print(f"throughput: {options.trials} trials of {options.sleep} s, parallelism "
          f"{options.parallelism}, {options.rounds} alternating rounds")
    medians = compare(rates, "trials/s", "throughput",
                      f"{options.sleep} s trials at parallelism {options.parallelism}")
    print(f"ratio runtime-ml / stock: {medians['runtime-ml'] / medians['stock']:.1f}x "
          "(target >= 5x)")
    fresh_median = statistics.median(fresh)
    print(f"with {FRESH_WORKER}=true: {fresh_median:.1f} trials/s, "
          f"{fresh_median / medians['stock']:.1f}x stock, "
          f"{fresh_median / medians['runtime-ml']:.2f}x runtime-ml's reused workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
