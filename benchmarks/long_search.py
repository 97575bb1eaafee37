"""A long search: 10,000 instant trials at parallelism 8, trials per second window by window.

On local[8], the first fmin of a fresh session first, each search a fresh fmin on the same session:
- tpe on a space with quantized parameters (what tuning a tree model looks like: depth
  hp.quniform, number of trees hp.qloguniform, learning rate hp.loguniform, subsample
  hp.uniform), with runtime-ml's TPE, MLflow tracking on (a real `mlflow server` on 127.0.0.1)
  and off;
- the same with hyperopt's own tpe.suggest (spark.runtimeml.hyperopt.fastTpe false), up to
  --stock-trials trials (it slows down as the search grows);
- rand on the same space, tracking on and off.
Prints trials per second per window of --window trials (by the trials' finish times), the
driver's memory growth per trial (its Python process's resident set, and the JVM's), one
suggest call's time at 100, 1,000 and 10,000 finished trials, hyperopt's against runtime-ml's
(median of --calls), and what one look of hyperopt's fmin loop does over the trials at those
sizes (refresh and counts, hyperopt's and runtime-ml's; hyperopt's own loss filter).
Writes benchmarks/results/long_search.png and long_search.json.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
from common import (
    RESULTS,
    driver_jvms,
    mlflow_server,
    print_table,
    quiet_logs,
    resident_kb,
    save_plot,
    spark_session,
)

FAST_TPE = "spark.runtimeml.hyperopt.fastTpe"
TRACKING = "spark.databricks.mlflow.trackHyperopt.enabled"


def space():
    from hyperopt import hp

    return {"depth": hp.quniform("depth", 2, 12, 1),
            "trees": hp.qloguniform("trees", np.log(10), np.log(1000), 1),
            "lr": hp.loguniform("lr", -5, 0), "subsample": hp.uniform("subsample", 0.5, 1)}


def objective(params):
    import math

    return ((params["depth"] - 6) ** 2 / 10 + abs(math.log(params["trees"]) - 5)
            + abs(math.log(params["lr"]) + 2.5) + (params["subsample"] - 0.8) ** 2)


def windows(trials, size):
    """Trials per second in each window of `size` trials, by finish time."""
    finished = sorted(doc["refresh_time"] for doc in trials.trials if doc["result"].get("loss")
                      is not None)
    rates = []
    for start in range(0, len(finished) - size + 1, size):
        seconds = (finished[start + size - 1] - finished[start]).total_seconds()
        rates.append(round(size / seconds, 1) if seconds > 0 else float("inf"))
    return rates


def search(spark, algo_name, trials_count, fast, tracking, window):
    import hyperopt
    from hyperopt import SparkTrials, fmin

    spark.conf.set(FAST_TPE, str(fast).lower())
    spark.conf.set(TRACKING, str(tracking).lower())
    algo = getattr(hyperopt, algo_name).suggest
    trials = SparkTrials(parallelism=8, spark_session=spark)
    jvm = next(iter(driver_jvms()), None)
    before = resident_kb(os.getpid()), resident_kb(jvm) if jvm else 0
    started = time.perf_counter()
    fmin(objective, space(), algo=algo, max_evals=trials_count, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    seconds = time.perf_counter() - started
    after = resident_kb(os.getpid()), resident_kb(jvm) if jvm else 0
    done = trials.count_successful_trials()
    assert done == trials_count, f"{done} of {trials_count} trials succeeded"
    return {"seconds": round(seconds, 1), "trials": done, "windows": windows(trials, window),
            "python_kb_per_trial": round((after[0] - before[0]) / done, 2),
            "jvm_kb_per_trial": round((after[1] - before[1]) / done, 2)}


def finished_trials(size):
    """(domain, trials): `size` finished trials proposed at random on space(), with the
    objective's losses."""
    from hyperopt import Trials, base, rand

    domain = base.Domain(objective, space())
    trials = Trials()
    docs = rand.suggest(list(range(size)), domain, trials, 0)
    for doc in docs:
        params = {key: values[0] for key, values in doc["misc"]["vals"].items()}
        doc["state"] = base.JOB_STATE_DONE
        doc["result"] = {"status": "ok", "loss": objective(params)}
    trials.insert_trial_docs(docs)
    trials.refresh()
    return domain, trials


def suggest_times(sizes, calls):
    """Median seconds of one tpe.suggest call, hyperopt's and runtime-ml's, at each history size
    (finished trials proposed at random, losses of the objective above)."""
    # runtime-ml imports MLflow in a thread of its own from the moment SparkTrials is patched;
    # waiting for that import keeps its hold on the GIL out of the timings.
    import mlflow  # noqa: F401
    from hyperopt import tpe

    from runtime_ml.driver import fast_tpe

    found = {}
    for size in sizes:
        domain, trials = finished_trials(size)
        ours = fast_tpe.replacing(tpe.suggest)
        algos = {"hyperopt": tpe.suggest, "runtime-ml": ours}
        times = {name: [] for name in algos}
        for seed in range(-3, calls):  # 3 calls each first (runtime-ml's builds its graph)
            for name, algo in algos.items():  # alternating, so both meet the same machine
                started = time.perf_counter()
                algo([size], domain, trials, seed + 3)
                if seed >= 0:
                    times[name].append(time.perf_counter() - started)
        row = {name: statistics.median(values) for name, values in times.items()}
        same = all(tpe.suggest([size], domain, trials, seed) == ours([size], domain, trials, seed)
                   for seed in range(3))
        found[size] = {**row, "same points": same}
    return found


def look_times(sizes, calls):
    """Median seconds of what one look of hyperopt's fmin loop does over the trials, at each
    history size (finished trials): refresh() and the three counts by state it asks for, as
    hyperopt's Trials answers them and as runtime-ml's SettledTrials does; and hyperopt's own
    filter of every trial's loss (to show the best one and check loss_threshold), which stays."""
    from hyperopt import base

    from runtime_ml.compat.hyperopt_private import SettledTrials

    def refresh_and_count(refresh, count):
        refresh()
        count(base.JOB_STATE_NEW)
        count([base.JOB_STATE_NEW, base.JOB_STATE_RUNNING])
        count(base.JOB_STATE_DONE)

    found = {}
    for size in sizes:
        _, trials = finished_trials(size)
        settled = SettledTrials(trials)
        steps = {
            "hyperopt's refresh and counts": lambda trials, settled: refresh_and_count(
                trials.refresh, trials.count_by_state_unsynced),
            "runtime-ml's refresh and counts": lambda trials, settled: refresh_and_count(
                settled.refresh, settled.count_by_state_unsynced),
            "hyperopt's loss filter": lambda trials, settled: [
                loss for loss in trials.losses() if loss is not None and not np.isnan(loss)],
        }
        row = {}
        for name, step in steps.items():
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                step(trials, settled)
                times.append(time.perf_counter() - started)
            row[name] = statistics.median(times)
        found[size] = row
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10000)
    parser.add_argument("--stock-trials", type=int, default=2000)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--calls", type=int, default=7)
    parser.add_argument("--suggest-only", action="store_true")
    parser.add_argument("--only", default="", help="run only the searches whose label has this")
    options = parser.parse_args()
    quiet_logs()
    import logging

    logging.getLogger("hyperopt.tpe").setLevel(logging.WARNING)
    results = {"suggest": {}, "searches": {}}
    print("one tpe.suggest call, median of", options.calls)
    timed = suggest_times([100, 1000, options.trials], options.calls)
    print_table(["finished trials", "hyperopt ms", "runtime-ml ms", "x faster", "same points"],
                [[size, f"{row['hyperopt'] * 1000:.1f}", f"{row['runtime-ml'] * 1000:.2f}",
                  f"{row['hyperopt'] / row['runtime-ml']:.1f}", row["same points"]]
                 for size, row in timed.items()])
    results["suggest"] = {str(k): v for k, v in timed.items()}
    looks = look_times([100, 1000, options.trials], options.calls)
    names = list(next(iter(looks.values())))
    print("one look of hyperopt's fmin loop over the trials, ms (median of", options.calls, ")")
    print_table(["finished trials"] + names,
                [[size] + [f"{row[name] * 1000:.3f}" for name in names]
                 for size, row in looks.items()])
    results["look"] = {str(k): v for k, v in looks.items()}
    if not options.suggest_only:
        import mlflow

        with mlflow_server() as server:
            mlflow.set_tracking_uri(server.uri)
            mlflow.set_experiment("long-search")
            spark = spark_session("local[8]", tracking=True)
            plan = [("tpe", options.trials, True, True, "tpe, runtime-ml's, tracked"),
                    ("tpe", options.trials, True, False, "tpe, runtime-ml's, untracked"),
                    ("tpe", options.stock_trials, False, False, "tpe, hyperopt's, untracked"),
                    ("rand", options.trials, True, True, "rand, tracked"),
                    ("rand", options.trials, True, False, "rand, untracked")]
            for algo, count, fast, tracking, label in plan:
                if options.only not in label:
                    continue
                found = search(spark, algo, count, fast, tracking, options.window)
                results["searches"][label] = found
                print(f"{label}: {found['trials']} trials in {found['seconds']} s; trials/s per "
                      f"{options.window}: {found['windows']}; driver memory per trial: Python "
                      f"{found['python_kb_per_trial']} KB, JVM {found['jvm_kb_per_trial']} KB",
                      flush=True)
            spark.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "long_search.json").write_text(json.dumps(results, indent=1))

    def draw(axes):
        for label, found in results["searches"].items():
            ends = [options.window * (i + 1) for i in range(len(found["windows"]))]
            axes.plot(ends, found["windows"], marker="o", label=label)
        axes.set_xlabel("trials finished")
        axes.set_ylabel(f"trials per second (window of {options.window})")
        axes.set_title("10,000 instant trials, parallelism 8, local[8]")
        axes.legend()

    if results["searches"]:
        save_plot("long_search", draw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
