"""A reference for scaleout.py: the same schedule with bare PySpark jobs and no hyperopt at all.

P threads each run ceil(N / P) one-task jobs in a row (`rdd.mapPartitions(f).collect()`, f sleeps d
seconds): one Spark job per trial with nothing else around it. These workers import nothing beyond
PySpark, so the garbage collection PySpark runs after each task is cheap for them; runtime-ml gets
there by freezing its workers' heaps. Default: N 128, d 1 s, P 8, on local[8].
"""

import argparse
import math
import threading
import time

from common import median, print_table, quiet_logs, spark_session


def sleeping_task(seconds):
    def run(rows):
        for _ in rows:
            pass
        time.sleep(seconds)
        yield 0

    return run


def timed_schedule(spark, jobs, parallelism, seconds):
    one_row = spark.sparkContext.parallelize([0], 1)
    return timed_threads(jobs, parallelism,
                         lambda: one_row.mapPartitions(sleeping_task(seconds)).collect())


def timed_threads(jobs, parallelism, job):
    """Seconds to run `job()` `jobs` times from `parallelism` threads, each running its share in a
    row."""
    per_thread = math.ceil(jobs / parallelism)

    def slot():
        for _ in range(per_thread):
            job()

    threads = [threading.Thread(target=slot) for _ in range(parallelism)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=128)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    quiet_logs()
    spark = spark_session(f"local[{options.parallelism}]")
    timed_schedule(spark, 2 * options.parallelism, options.parallelism, 0.1)  # start the workers
    times = [timed_schedule(spark, options.jobs, options.parallelism, options.sleep)
             for _ in range(options.rounds)]
    spark.stop()
    ideal = math.ceil(options.jobs / options.parallelism) * options.sleep
    print(f"bare Spark floor: {options.jobs} one-task jobs of {options.sleep} s on "
          f"{options.parallelism} threads, {options.rounds} round(s)")
    print_table(["parallelism", "ideal s", "median s", "efficiency", "rounds"],
                [[options.parallelism, f"{ideal:.1f}", f"{median(times):.1f}",
                  f"{ideal / median(times):.2f}", " ".join(f"{t:.1f}" for t in times)]])


if __name__ == "__main__":
    main()
