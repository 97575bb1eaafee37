"""The seeds' scale-out experiment: wall time of max_evals trials of d seconds vs parallelism.

Stock SparkTrials and runtime-ml alternate at each parallelism. Efficiency = ideal / actual with
ideal = ceil(max_evals / p) * d. Target: efficiency >= 0.90 at parallelism 8 with 1 s trials.
Default: max_evals 128, d = 1 s, parallelism 1 2 4 8, on local[8] (8 task slots). Each runtime-ml
run starts from warm Python workers; what a first fmin on fresh workers pays is measured apart
(the first line printed).
"""

import argparse
import math
import sys

from common import MODES, median, print_table, quiet_logs, save_plot, spark_session, timed_fmin
from objectives import sleeper


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds per trial (d)")
    parser.add_argument("--max-evals", type=int, default=128)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--algo", default="tpe", choices=["tpe", "rand"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    options = parser.parse_args()
    quiet_logs()
    spark = spark_session(f"local[{max(options.parallelism)}]")
    objective = sleeper(options.sleep)
    top = max(options.parallelism)
    # Warm up: start the JVM side and one Python worker per slot. Fresh workers import hyperopt
    # (~1.5 s of CPU each); stock pays that on every trial, runtime-ml once per worker.
    cold = timed_fmin(spark, "runtime-ml", sleeper(0.5), 2 * top, top)
    warm = timed_fmin(spark, "runtime-ml", sleeper(0.5), 2 * top, top)
    print(f"runtime-ml, {2 * top} trials of 0.5 s at parallelism {top}: {cold:.1f} s on fresh "
          f"Python workers, {warm:.1f} s on warm ones")
    times = {(mode, p): [] for mode in options.modes for p in options.parallelism}
    for round_ in range(options.rounds):
        for p in options.parallelism:
            for mode in options.modes:
                if mode == "runtime-ml":
                    # Stock's trials take the idle Python workers and never hand them back, so
                    # start each runtime-ml run from warm workers, as a second fmin would.
                    timed_fmin(spark, mode, sleeper(0.2), 2 * p, p)
                times[(mode, p)].append(
                    timed_fmin(spark, mode, objective, options.max_evals, p, seed=round_,
                               algo=options.algo))
    spark.stop()

    rows, efficiency = [], {}
    for p in options.parallelism:
        ideal = math.ceil(options.max_evals / p) * options.sleep
        row = [p, f"{ideal:.1f}"]
        for mode in options.modes:
            actual = median(times[(mode, p)])
            efficiency[(mode, p)] = ideal / actual
            row += [f"{actual:.1f}", f"{ideal / actual:.2f}"]
        if set(MODES) <= set(options.modes):
            row.append(f"{median(times[('stock', p)]) / median(times[('runtime-ml', p)]):.1f}x")
        rows.append(row)
    headers = ["parallelism", "ideal s"]
    for mode in options.modes:
        headers += [f"{mode} s", f"{mode} eff"]
    if set(MODES) <= set(options.modes):
        headers.append("speed-up")
    print(f"scale-out: {options.max_evals} trials of {options.sleep} s, median of "
          f"{options.rounds} round(s)")
    print_table(headers, rows)
    top = max(options.parallelism)
    if "runtime-ml" in options.modes:
        print(f"runtime-ml efficiency at parallelism {top}: {efficiency[('runtime-ml', top)]:.2f} "
              "(target >= 0.90)")

    def draw(axes):
        axes.plot(options.parallelism, [math.ceil(options.max_evals / p) * options.sleep
                                        for p in options.parallelism], "k--", label="ideal")
        for mode in options.modes:
            axes.plot(options.parallelism, [median(times[(mode, p)]) for p in options.parallelism],
                      "o-", label=mode)
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("parallelism")
        axes.set_ylabel("wall time (s)")
        axes.set_title(f"{options.max_evals} trials of {options.sleep} s")
        axes.legend()

    save_plot("scaleout", draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
