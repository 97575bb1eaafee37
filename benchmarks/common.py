"""Shared by the benchmarks: a Spark session, a timed fmin as stock or runtime-ml, a real MLflow
server, tables, plots."""

import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from runtime_ml.conf import TRACK_HYPEROPT

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(REPO / "benchmarks"))

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "benchmarks"), os.environ.get("PYTHONPATH")) if p)

MODES = ("stock", "runtime-ml")


def spark_session(master, tracking=False, remote=False, conf=None):
    """Tracking is off unless asked: it has its own benchmark (tracking_overhead.py). With
    `remote`, a Spark Connect session on PySpark's local Connect server for `master` (`conf`, the
    server's static confs, goes to that server)."""
    from pyspark.sql import SparkSession

    if remote:
        builder = SparkSession.builder.remote(master)
    else:
        builder = (SparkSession.builder.master(master).appName("runtime-ml benchmark")
                   .config("spark.ui.enabled", "false")
                   .config(TRACK_HYPEROPT.name, str(tracking).lower())
                   .config("spark.ui.showConsoleProgress", "false"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if remote:
        spark.conf.set(TRACK_HYPEROPT.name, str(tracking).lower())
        return spark
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextlib.contextmanager
def mlflow_server():
    """A real `mlflow server` on 127.0.0.1 (sqlite backend, the tests' MlflowServer) in a
    temporary directory, stopped and removed afterwards."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import MlflowServer

    with tempfile.TemporaryDirectory() as scratch:
        server = MlflowServer(Path(scratch)).start()
        try:
            yield server
        finally:
            server.stop()


def resident_kb(pid):
    """A process's resident memory in KB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def driver_jvms():
    """The process ids of this process's JVMs (PySpark's py4j gateway, the driver JVM)."""
    import subprocess

    found = subprocess.run(["pgrep", "-P", str(os.getpid()), "java"], capture_output=True,
                           text=True)
    return [int(pid) for pid in found.stdout.split()]


def quiet_logs():
    import logging

    for name in ("hyperopt", "hyperopt-spark", "hyperopt.tpe", "hyperopt.fmin", "runtime_ml",
                 "py4j"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_fmin(spark, mode, objective, space, max_evals, parallelism, seed=0, algo="tpe"):
    """(wall time, trials) of one SparkTrials fmin; `mode` stock switches runtime-ml off for it.

    `algo` is "tpe", "rand" or a suggest function."""
    import numpy as np
    from hyperopt import SparkTrials, fmin, rand, tpe

    if mode == "stock":
        os.environ["RUNTIME_ML_DISABLED"] = "1"
    else:
        os.environ.pop("RUNTIME_ML_DISABLED", None)
    try:
        trials = SparkTrials(parallelism=parallelism, spark_session=spark)
        started = time.perf_counter()
        suggest = algo if callable(algo) else {"tpe": tpe, "rand": rand}[algo].suggest
        fmin(objective, space, algo=suggest, max_evals=max_evals,
             trials=trials, rstate=np.random.default_rng(seed), show_progressbar=False)
        elapsed = time.perf_counter() - started
    finally:
        os.environ.pop("RUNTIME_ML_DISABLED", None)
    assert trials.count_successful_trials() == max_evals, "a benchmark trial failed"
    return elapsed, trials


def timed_fmin(spark, mode, objective, max_evals, parallelism, seed=0, algo="tpe"):
    """Wall time of one SparkTrials fmin over x ~ uniform(-5, 5)."""
    from hyperopt import hp

    return run_fmin(spark, mode, objective, hp.uniform("x", -5, 5), max_evals, parallelism,
                    seed=seed, algo=algo)[0]


def median(values):
    return statistics.median(values)


def percentile(values, fraction):
    """The value at `fraction` of the sorted values (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))


def compare(samples, value_name, plot_name, title):
    """Print medians and rounds of two sample sets and bar-plot the medians; returns the medians."""
    medians = {label: median(values) for label, values in samples.items()}
    print_table(["", f"median {value_name}", "rounds"],
                [[label, f"{medians[label]:.2f}", " ".join(f"{v:.2f}" for v in values)]
                 for label, values in samples.items()])

    def draw(axes):
        axes.bar(list(medians), list(medians.values()), color=["grey", "tab:blue"])
        axes.set_ylabel(f"{value_name} (median)")
        axes.set_title(title)

    save_plot(plot_name, draw)
    return medians


def save_plot(name, draw):
    """Calls draw(axes) and writes benchmarks/results/<name>.png (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    draw(axes)
    figure.tight_layout()
    path = RESULTS / f"{name}.png"
    figure.savefig(path)
    plt.close(figure)
    print(f"plot: {path}")
