"""The first fmin of a fresh application, as a spark-submit job or a new notebook meets it.

Every measurement runs in a new Python process with a new Spark session (a new JVM and fresh
Python workers) and times its first fmin ("cold"), then a second one in the same session
("warm"). Stock SparkTrials is measured the same way with RUNTIME_ML_DISABLED=1. Four parts:
- scale-out: 64 trials of 1 s at parallelism 8 on local[8] (target: cold efficiency >= 0.90),
  beside the same schedule of bare one-task PySpark jobs (what a fresh session allows; target for
  the default configuration: cold <= 1.05x those jobs);
- throughput: 32 trials of 0.05 s at parallelism 4 on local[4] (target: cold >= 10x stock, in the
  default configuration);
- closure: 32 trials of 0 s at parallelism 2 on local[2], the objective closing over 10 KB to
  90 MB of data (target: 90 MB <= 1.15x 10 KB), with a plot of wall time against closure size
  (stock and runtime-ml);
- footprint: a Python worker's resident memory and heavy imports after one trivial trial, against
  a worker that ran a bare PySpark task (target: no hyperopt/scipy/mlflow, under 80 MB).
runtime-ml is measured untracked and in the default configuration (TRACKED: MLflow tracking on,
MLflow's default store in a directory of its own that exists, hyperopt imported at the script's
top as the seeds' job does, mlflow not imported by the script).
"""

import argparse
import atexit
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from common import MODES, print_table, quiet_logs, save_plot, spark_session, timed_fmin

PARTS = ("scaleout", "throughput", "closure", "footprint")
BARE = "bare PySpark"  # one-task jobs from P threads, no hyperopt (job_floor.py's schedule)
TRACKED = "runtime-ml tracked"  # the default configuration
CLOSURE_SIZES = (10_000, 3_000_000, 30_000_000, 90_000_000)


# ------------------------------------------------------------------ in the child process

def objective_for(spec):
    from objectives import closing_over, sleeper

    if "closure_bytes" in spec:
        import numpy as np

        return closing_over(np.ones(spec["closure_bytes"] // 8), spec["sleep"])
    return sleeper(spec["sleep"])


def child(spec):
    """One fresh session: the cold and the warm fmin (or the worker footprint)."""
    if spec.get("mode") == TRACKED:
        import hyperopt  # noqa: F401  (the seeds' job's first line)
    quiet_logs()
    spark = spark_session(spec["master"], remote=spec.get("remote", False),
                          tracking=spec.get("mode") == TRACKED)
    try:
        if "footprint" in spec:
            return footprint_of(spark, spec["footprint"])
        if spec["mode"] == JOBS:
            return one_task_jobs(spark, spec["api"], spec["max_evals"])
        if spec["mode"] == BARE:
            from job_floor import timed_schedule

            return {phase: timed_schedule(spark, spec["max_evals"], spec["parallelism"],
                                          spec["sleep"]) for phase in ("cold", "warm")}
        objective = objective_for(spec)
        mode = "runtime-ml" if spec["mode"] == TRACKED else spec["mode"]
        return {phase: timed_fmin(spark, mode, objective, spec["max_evals"], spec["parallelism"])
                for phase in ("cold", "warm")}
    finally:
        spark.stop()


JOBS = "one-task jobs"  # `max_evals` empty one-task jobs in a row, through `api`


def one_task_jobs(spark, api, count):
    """{"cold": the first job's seconds, "warm": the median of the others}."""
    import time

    def rows(partition):
        for _ in partition:
            pass
        yield 0

    def batches(iterator):
        import pyarrow

        for _ in iterator:
            pass
        yield pyarrow.RecordBatch.from_pydict({"r": [0]})

    def frames(iterator):
        import pandas

        for _ in iterator:
            pass
        yield pandas.DataFrame({"r": [0]})

    run = {
        "rdd": lambda: spark.sparkContext.parallelize([0], 1).mapPartitions(rows).collect(),
        "mapInArrow": lambda: spark.range(1, numPartitions=1).mapInArrow(batches, "r long")
        .collect(),
        "mapInPandas": lambda: spark.range(1, numPartitions=1).mapInPandas(frames, "r long")
        .collect(),
    }[api]
    times = []
    for _ in range(count):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return {"cold": times[0], "warm": statistics.median(times[1:])}


def footprint_of(spark, what):
    from common import run_fmin
    from objectives import footprint, worker_footprint

    def probe():
        return spark.sparkContext.parallelize([0], 1).map(lambda _: footprint()).collect()[0]

    if what == "bare PySpark task":
        return {"during": probe()}
    mode = "stock" if what.startswith("stock") else "runtime-ml"
    from hyperopt import hp

    _, trials = run_fmin(spark, mode, worker_footprint, hp.uniform("x", -1, 1), 1, 1)
    result = dict(trials.trials[0]["result"])
    after = probe() if mode == "runtime-ml" else None  # stock's worker exits after its trial
    return {"during": {k: result[k] for k in ("rss_mb", "imported", "pid")}, "after": after}


# ------------------------------------------------------------------ in the parent

_store_home = None  # the tracked mode's working directory: MLflow's default store, made once


def tracked_home():
    """A directory whose MLflow default store (./mlflow.db or ./mlruns) already exists: a user's
    first fmin of the day, not the store's first one ever."""
    global _store_home
    if _store_home is None:
        _store_home = tempfile.mkdtemp(prefix="runtime-ml-bench-")
        atexit.register(shutil.rmtree, _store_home, True)
        subprocess.run([sys.executable, "-c", "import mlflow; mlflow.MlflowClient()"
                        ".search_experiments()"], cwd=_store_home, env=default_tracking_env(),
                       check=True, capture_output=True, timeout=600)
    return _store_home


def default_tracking_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.pop("RUNTIME_ML_DISABLED", None)
    return env


def fresh_session(spec, script=__file__):
    """Run `child(spec)` of `script` (this file's, by default) in a new Python process, with
    `--child SPEC`; returns what it measured."""
    env = default_tracking_env()
    cwd = tracked_home() if spec.get("mode") == TRACKED else None
    done = subprocess.run([sys.executable, os.path.abspath(script), "--child", json.dumps(spec)],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"cold_start: the child for {spec} failed")
    return json.loads(lines[-1][len("RESULT "):])


def rounds_of(spec, modes, rounds):
    """{mode: [{"cold": s, "warm": s}, ...]}, the modes alternating in each round."""
    samples = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            samples[mode].append(fresh_session(dict(spec, mode=mode)))
    return samples


def med(samples, phase):
    return statistics.median(sample[phase] for sample in samples)


def scaleout(options):
    p, n, sleep = 8, 64, 1.0
    modes = (TRACKED, "runtime-ml", BARE)
    samples = rounds_of({"master": f"local[{p}]", "sleep": sleep, "max_evals": n,
                         "parallelism": p}, modes, options.rounds)
    ideal = math.ceil(n / p) * sleep
    print(f"\nscale-out, first fmin: {n} trials of {sleep} s at parallelism {p} on local[{p}], "
          f"ideal {ideal:.1f} s, {options.rounds} fresh session(s); {BARE}: the same schedule of "
          "one-task jobs, nothing else")
    rows = [[mode, phase, f"{med(samples[mode], phase):.2f}",
             f"{ideal / med(samples[mode], phase):.2f}",
             " ".join(f"{s[phase]:.2f}" for s in samples[mode])]
            for mode in modes for phase in ("cold", "warm")]
    print_table(["", "", "median s", "efficiency", "rounds"], rows)
    print(f"runtime-ml cold efficiency: {ideal / med(samples['runtime-ml'], 'cold'):.2f} (target "
          f">= 0.90; {BARE} cold: {ideal / med(samples[BARE], 'cold'):.2f})")
    print(f"default configuration (tracked) cold / {BARE} cold: "
          f"{med(samples[TRACKED], 'cold') / med(samples[BARE], 'cold'):.2f}x (target <= 1.05x); "
          f"untracked: {med(samples['runtime-ml'], 'cold') / med(samples[BARE], 'cold'):.2f}x")


def throughput(options):
    p, n, sleep = 4, 32, 0.05
    modes = MODES + (TRACKED,)
    samples = rounds_of({"master": f"local[{p}]", "sleep": sleep, "max_evals": n,
                         "parallelism": p}, modes, options.rounds)
    print(f"\nthroughput, first fmin: {n} trials of {sleep} s at parallelism {p} on local[{p}], "
          f"{options.rounds} fresh session(s) per mode")
    rows = []
    for mode in modes:
        for phase in ("cold", "warm"):
            rows.append([mode, phase, f"{med(samples[mode], phase):.2f}",
                         f"{n / med(samples[mode], phase):.1f}",
                         " ".join(f"{s[phase]:.2f}" for s in samples[mode])])
    print_table(["", "", "median s", "trials/s", "rounds"], rows)
    for phase in ("cold", "warm"):
        target = " (target >= 10x)" if phase == "cold" else ""
        print(f"{phase}: runtime-ml / stock, default configuration (tracked) "
              f"{med(samples['stock'], phase) / med(samples[TRACKED], phase):.1f}x{target}, "
              f"untracked {med(samples['stock'], phase) / med(samples['runtime-ml'], phase):.1f}x")


def closure(options):
    """The target ratio from `--rounds` sessions per size at 10 KB and 90 MB (runtime-ml); the
    plot from one session per size and mode."""
    p, n = 2, 32
    small, large = CLOSURE_SIZES[0], CLOSURE_SIZES[-1]
    spec = {"master": f"local[{p}]", "sleep": 0.0, "max_evals": n, "parallelism": p}
    times = {}
    for round_ in range(options.rounds):
        for size in CLOSURE_SIZES if round_ == 0 else (small, large):
            modes = MODES if round_ == 0 else ("runtime-ml",)
            for mode, sample in rounds_of(dict(spec, closure_bytes=size), modes, 1).items():
                times.setdefault((mode, size), []).extend(sample)
    print(f"\nclosure size, first fmin: {n} trials of 0 s at parallelism {p} on local[{p}]")
    rows = [[mode, f"{size / 1e6:g} MB", len(times[(mode, size)]),
             f"{med(times[(mode, size)], 'cold'):.2f}", f"{med(times[(mode, size)], 'warm'):.2f}"]
            for mode in MODES for size in CLOSURE_SIZES]
    print_table(["", "closure", "sessions", "cold s (median)", "warm s"], rows)
    for phase in ("cold", "warm"):
        ratio = med(times[("runtime-ml", large)], phase) / med(times[("runtime-ml", small)], phase)
        stock = med(times[("stock", large)], phase) / med(times[("stock", small)], phase)
        target = " (target <= 1.15x)" if phase == "cold" else ""
        print(f"{phase}: {large / 1e6:g} MB / {small / 1e3:g} KB closure: runtime-ml "
              f"{ratio:.2f}x{target}, stock {stock:.2f}x")

    def draw(axes):
        for mode in MODES:
            axes.plot([s / 1e6 for s in CLOSURE_SIZES],
                      [med(times[(mode, s)], "cold") for s in CLOSURE_SIZES], "o-",
                      label=f"{mode}, first fmin")
        axes.set_xlabel("pickled closure (MB)")
        axes.set_ylabel("wall time (s)")
        axes.set_title(f"{n} trials of 0 s at parallelism {p}")
        axes.set_ylim(bottom=0)
        axes.legend()

    save_plot("closure_size", draw)


def footprint(options):
    print("\nworker footprint: a fresh session's Python worker after one trivial trial")
    rows, runtime_ml = [], None
    for what in ("bare PySpark task", "stock", "runtime-ml"):
        measured = fresh_session({"master": "local[2]", "footprint": what})
        for moment in ("during", "after"):
            seen = measured.get(moment)
            if seen:
                rows.append([what, "at the trial's end" if moment == "during" and what !=
                             "bare PySpark task" else "in the next task" if moment == "after"
                             else "in the task", f"{seen['rss_mb']:.0f}",
                             " ".join(seen["imported"]) or "-"])
        if what == "runtime-ml":
            runtime_ml = measured["after"] or measured["during"]
    print_table(["worker", "measured", "RSS MB", "heavy imports"], rows)
    banned = {"hyperopt", "scipy", "mlflow"} & set(runtime_ml["imported"])
    print(f"runtime-ml worker after one trial: {runtime_ml['rss_mb']:.0f} MB, "
          f"hyperopt/scipy/mlflow imported: {sorted(banned) or 'none'} (target: none, < 80 MB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="part",
                        help=f"which parts to run, of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh sessions per measured point (default 3)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print("RESULT " + json.dumps(child(json.loads(options.child))))
        return 0
    unknown = set(options.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}: choose from {', '.join(PARTS)}")
    for part in options.parts or PARTS:
        globals()[part](options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
