"""Trials spread over executors: wall time of trials that use all of an executor's cores, at
parallelism equal to the number of executors, runtime-ml vs stock.

A standalone master and two workers on 127.0.0.1, worker i and its executor pinned to CPU i
(taskset), each declaring 2 cores: Spark sees two slots per executor, as on a real cluster where
a trial's trainer uses every core of its executor, and can place two trials on one executor while
the other idles. The trial is a fixed amount of numpy matrix multiplication (BLAS uses every CPU
the executor has: here its one pinned CPU), about 1 s alone. Modes, alternating per round:
stock hyperopt, runtime-ml as it ships (trials spread), runtime-ml with
spark.runtimeml.hyperopt.spreadTrials=false (placement left to Spark's scheduler, as stock).
Each trial records which executor ran it (its JVM's pid) and when; "stacked" is the time an
executor ran two trials while the other ran none. Tracking off (its cost is measured elsewhere).
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, median, print_table, quiet_logs

MODES = ("stock", "runtime-ml", "runtime-ml, spreadTrials=false")


def busy_trial(size, rounds):
    """The objective: `rounds` multiplications of two size x size matrices; records itself."""

    def objective(x):
        import time as clock

        import numpy as np

        start = clock.time()
        rng = np.random.default_rng(0)
        a = rng.random((size, size))
        for _ in range(rounds):
            a = a @ a
            a /= np.abs(a).max()
        parent = os.getppid()
        with open(f"/proc/{parent}/cmdline", "rb") as cmdline:
            is_jvm = b"java" in cmdline.read().split(b"\0")[0]
        if not is_jvm:  # the worker's daemon: its parent is the executor
            with open(f"/proc/{parent}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        return {"loss": x ** 2, "status": "ok", "start": start, "end": clock.time(),
                "executor": parent}

    return objective


def calibrate(size, target_seconds):
    """Rounds of multiplication that take about `target_seconds` in a process on one CPU (as an
    executor's Python worker here), after a warm-up."""
    import subprocess

    code = (f"import time, numpy as np\n"
            f"a = np.random.default_rng(0).random(({size}, {size}))\n"
            f"for _ in range(3): a = a @ a; a /= np.abs(a).max()\n"
            f"t = time.perf_counter()\n"
            f"for _ in range(20): a = a @ a; a /= np.abs(a).max()\n"
            f"print((time.perf_counter() - t) / 20)")
    done = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], check=True,
                          capture_output=True, text=True)
    return max(1, round(target_seconds / float(done.stdout.strip())))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="one trial's work on one CPU, about")
    parser.add_argument("--size", type=int, default=300)
    options = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        print("needs 2 CPUs: one per executor")
        return 1
    sys.path.insert(0, str(REPO / "tests"))
    from cluster_scenario import stacked_seconds
    from conftest import StandaloneCluster
    from hyperopt import SparkTrials, fmin, hp, rand
    from pyspark.sql import SparkSession

    from runtime_ml.conf import DISABLED, SPREAD_TRIALS, TRACK_HYPEROPT
    from runtime_ml.driver.cluster import read_cluster_facts

    rounds_of_work = calibrate(options.size, options.seconds)
    quiet_logs()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "conf").mkdir()
        cluster = StandaloneCluster(root, sys.executable, root / "conf", cores=2, pinned=True)
        cluster.start()
        try:
            spark = (SparkSession.builder.master(cluster.url).appName("runtime-ml placement")
                     .config("spark.ui.enabled", "false")
                     .config("spark.ui.showConsoleProgress", "false")
                     .config("spark.executor.cores", "2").config("spark.cores.max", "4")
                     .config("spark.executor.memory", "512m")
                     .config(TRACK_HYPEROPT.name, "false").getOrCreate())
            spark.sparkContext.setLogLevel("ERROR")
            facts = read_cluster_facts(spark, wait_seconds=60)
            assert len(facts.executors) == 2, f"executors: {facts.executors}"
            walls = {mode: [] for mode in MODES}
            stacked = {mode: [] for mode in MODES}
            alone = []  # durations of trials that had their executor to themselves
            for round_index in range(options.rounds):
                for mode in MODES:
                    os.environ[DISABLED.name] = "1" if mode == "stock" else ""
                    spark.conf.set(SPREAD_TRIALS.name, str(not mode.endswith("false")).lower())
                    trials = SparkTrials(parallelism=2, spark_session=spark)
                    started = time.monotonic()
                    fmin(busy_trial(options.size, rounds_of_work), hp.uniform("x", -1, 1),
                         algo=rand.suggest, max_evals=options.trials, trials=trials,
                         show_progressbar=False)
                    walls[mode].append(time.monotonic() - started)
                    records = [t["result"] for t in trials.trials]
                    stacked[mode].append(stacked_seconds(records, executors=2))
                    if mode == "runtime-ml":
                        alone += [r["end"] - r["start"] for r in records]
                    print(f"  round {round_index + 1} {mode}: {walls[mode][-1]:.1f} s, "
                          f"stacked {stacked[mode][-1]:.1f} s, executors "
                          f"{[r['executor'] for r in sorted(records, key=lambda r: r['start'])]}",
                          flush=True)
            os.environ[DISABLED.name] = ""
            spark.stop()
        finally:
            cluster.stop()
    trial = median(alone)
    ideal = options.trials / 2 * trial
    print(f"\n{options.trials} trials of matrix multiplication ({trial:.2f} s each on an executor "
          f"of their own) at parallelism 2 on 2 executors (one CPU each, 2 declared cores), "
          f"ideal {ideal:.1f} s, {options.rounds} rounds (the first of each mode includes its "
          f"workers' start)")
    rows = [[mode, f"{median(walls[mode]):.1f}", f"{median(stacked[mode]):.1f}",
             " ".join(f"{w:.1f}" for w in walls[mode]),
             " ".join(f"{s:.1f}" for s in stacked[mode])] for mode in MODES]
    print_table(["", "median wall s", "median stacked s", "walls", "stacked"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
