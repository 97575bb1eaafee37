"""Parallelism 128 on one machine: 1,024 trials of 2 s at parallelism 128 on local[128].

Each measurement is the first run of a fresh process with a fresh Spark session:
- runtime-ml in the default configuration (MLflow tracking on, to a real `mlflow server` on
  127.0.0.1): the first fmin's wall time, whether every trial succeeded, and whether every trial's
  run is in MLflow, FINISHED with its loss;
- the same schedule of bare one-task PySpark jobs (128 threads, 8 jobs of 2 s each in a row, no
  hyperopt: job_floor.py's schedule), the floor a fresh session allows.
Also what the driver and the workers cost: the driver's CPU seconds (its Python process and its
JVM), the Python workers left running and their resident memory; and the MLflow server's CPU
seconds while each measurement ran. First, what each of the three requests a trial's run takes
costs the server and this process in CPU (REQUESTS of each, one at a time). Target: the fmin within 1.10x
the bare jobs.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

from common import driver_jvms, mlflow_server, print_table, quiet_logs, resident_kb, spark_session


def process_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def group_cpu_seconds(leader):
    """The CPU seconds of every process in `leader`'s process group (the MLflow server and its
    workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.getpgid(int(entry)) == leader:
                total += process_cpu_seconds(int(entry))
        except OSError:
            pass
    return total


REQUESTS = 200


def request_costs(server):
    """{request: (server CPU ms, client CPU ms)} for each of the requests a trial's run takes, as
    runtime-ml's tracker makes them (create with its tags, log_batch with params, the loss and a
    tag, the quiet end), REQUESTS of each one at a time."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    from runtime_ml.tracking.records import end_run_quietly, ms

    client = MlflowClient(server.uri)
    experiment = client.create_experiment(f"request-costs-{time.time()}")
    parent = client.create_run(experiment).info.run_id
    runs, costs = [], {}
    params = [Param(name, "1.0") for name in ("depth", "trees", "rate", "subsample")]
    steps = {
        "create_run": lambda i: runs.append(client.create_run(
            experiment, ms(), {"mlflow.parentRunId": parent, "trial_id": str(i)},
            f"trial-{i}").info.run_id),
        "log_batch": lambda i: client.log_batch(runs[i], metrics=[Metric("loss", 0.5, ms(), 0)],
                                                params=params,
                                                tags=[RunTag("trial_status", "success")]),
        "end (update_run)": lambda i: end_run_quietly(client, runs[i], "FINISHED"),
    }
    for name, step in steps.items():
        server_before, client_before = group_cpu_seconds(server.process.pid), time.process_time()
        for i in range(REQUESTS):
            step(i)
        costs[name] = ((group_cpu_seconds(server.process.pid) - server_before) * 1000 / REQUESTS,
                       (time.process_time() - client_before) * 1000 / REQUESTS)
    return costs


def python_workers():
    """(count, resident MB) of PySpark's Python worker processes on this machine."""
    found = subprocess.run(["pgrep", "-f", "pyspark.daemon|pyspark/daemon.py|pyspark.worker"],
                           capture_output=True, text=True).stdout.split()
    return len(found), round(sum(resident_kb(int(pid)) for pid in found) / 1024)


def child(spec):
    quiet_logs()
    if spec["what"] == "fmin":
        import hyperopt  # noqa: F401  (a job's first line)
    spark = spark_session(f"local[{spec['parallelism']}]",
                          tracking=spec["what"] == "fmin" and not spec.get("untracked"))
    jvm = driver_jvms()
    cpu_before = process_cpu_seconds(os.getpid()), sum(map(process_cpu_seconds, jvm))
    started = time.perf_counter()
    found = {}
    if spec["what"] == "fmin":
        import mlflow
        import numpy as np
        from hyperopt import SparkTrials, fmin, hp, rand
        from objectives import sleeper

        experiment = mlflow.set_experiment("parallelism-128")
        trials = SparkTrials(parallelism=spec["parallelism"], spark_session=spark)
        fmin(sleeper(spec["seconds"]), hp.uniform("x", -5, 5), algo=rand.suggest,
             max_evals=spec["trials"], trials=trials, rstate=np.random.default_rng(0),
             show_progressbar=False)
        found["seconds"] = time.perf_counter() - started
        found["succeeded"] = trials.count_successful_trials()
        found["parallelism"] = trials.parallelism
        runs = mlflow.MlflowClient().search_runs([experiment.experiment_id], max_results=5000)
        found["finished runs"] = 0 if spec.get("untracked") else sum(
            1 for r in runs if "mlflow.parentRunId" in r.data.tags
            and r.info.status == "FINISHED" and "loss" in r.data.metrics)
    else:
        from job_floor import timed_schedule

        found["seconds"] = timed_schedule(spark, spec["trials"], spec["parallelism"],
                                          spec["seconds"])
    found["driver cpu s"] = round(process_cpu_seconds(os.getpid()) - cpu_before[0], 1)
    found["jvm cpu s"] = round(sum(map(process_cpu_seconds, jvm)) - cpu_before[1], 1)
    found["workers"], found["workers MB"] = python_workers()
    spark.stop()
    print("RESULT " + json.dumps(found), flush=True)


def fresh(spec, environment, server):
    server_cpu = group_cpu_seconds(server.process.pid)
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=environment, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"the measurement failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    found = json.loads(lines[-1][len("RESULT "):])
    found["server cpu s"] = round(group_cpu_seconds(server.process.pid) - server_cpu, 1)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1024)
    parser.add_argument("--parallelism", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--untracked", action="store_true",
                        help="the fmin with MLflow tracking off (to see what tracking costs)")
    parser.add_argument("--child")
    options = parser.parse_args()
    if options.child:
        return child(json.loads(options.child))
    spec = {"trials": options.trials, "parallelism": options.parallelism,
            "seconds": options.seconds}
    ideal = math.ceil(options.trials / options.parallelism) * options.seconds
    rows = []
    with mlflow_server() as server:
        costs = request_costs(server)
        print(f"CPU ms per request, {REQUESTS} of each, one at a time:")
        print_table(["request", "server", "client"],
                    [[name, f"{cost[0]:.1f}", f"{cost[1]:.1f}"] for name, cost in costs.items()])
        environment = dict(os.environ, MLFLOW_TRACKING_URI=server.uri)
        for _ in range(options.rounds):
            bare = fresh({**spec, "what": "bare"}, environment, server)
            tracked = fresh({**spec, "what": "fmin", "untracked": options.untracked}, environment,
                            server)
            rows.append((bare, tracked))
            print(f"bare jobs {bare['seconds']:.1f} s, runtime-ml fmin {tracked['seconds']:.1f} s "
                  f"({tracked['seconds'] / bare['seconds']:.2f}x); {tracked['succeeded']} of "
                  f"{options.trials} trials succeeded, {tracked['finished runs']} trial runs "
                  f"FINISHED with their loss", flush=True)
    print(f"{options.trials} trials of {options.seconds} s at parallelism {options.parallelism} "
          f"on local[{options.parallelism}], first run of a fresh session (ideal {ideal:.0f} s)")
    print_table(["", "seconds", "x bare", "driver cpu s", "jvm cpu s", "server cpu s", "workers",
                 "workers MB"],
                [[name, f"{found['seconds']:.1f}", f"{found['seconds'] / bare['seconds']:.2f}",
                  found["driver cpu s"], found["jvm cpu s"], found["server cpu s"],
                  found["workers"], found["workers MB"]]
                 for bare, tracked in rows for name, found in (("bare jobs", bare),
                                                                ("runtime-ml", tracked))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
