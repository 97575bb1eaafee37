"""Trials per second with short trials: stock SparkTrials vs runtime-ml, alternating in one run.

Default: 0.05 s trials, parallelism 4, 64 trials, 3 rounds on local[4]. Target: ratio >= 5.
"""

import argparse
import sys

from common import MODES, median, print_table, quiet_logs, save_plot, spark_session, timed_fmin
from objectives import sleeper


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
    spark.stop()

    medians = {mode: median(values) for mode, values in rates.items()}
    ratio = medians["runtime-ml"] / medians["stock"]
    print(f"throughput: {options.trials} trials of {options.sleep} s, parallelism "
          f"{options.parallelism}, {options.rounds} alternating rounds")
    print_table(["mode", "median trials/s", "rounds"],
                [[m, f"{medians[m]:.2f}", " ".join(f"{r:.2f}" for r in rates[m])] for m in MODES])
    print(f"ratio runtime-ml / stock: {ratio:.1f}x (target >= 5x)")

    def draw(axes):
        axes.bar(list(MODES), [medians[m] for m in MODES], color=["grey", "tab:blue"])
        axes.set_ylabel("trials per second (median)")
        axes.set_title(f"{options.sleep} s trials at parallelism {options.parallelism}: "
                       f"{ratio:.1f}x")

    save_plot("throughput", draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
