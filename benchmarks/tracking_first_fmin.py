"""The first fmin of a fresh process, MLflow tracking on (the default) vs off.

What a user meets: a new Python process starts Spark (not timed), then runs its first SparkTrials
fmin, without importing mlflow itself; hyperopt imported either right before the fmin, or at the
top of the script before Spark starts (as the seeds' code does: runtime-ml then imports MLflow in
the background meanwhile). Each measurement is its own process, rounds alternate on/off:
- 32 trials of 0.05 s at parallelism 4 on local[4], tracked into a sqlite store that exists;
- 32 trials of 0.5 s at parallelism 4, tracked to a real `mlflow server` on 127.0.0.1, and to the
  same server 50 ms away (tests/tcp_proxy.py holds each direction 25 ms).
Targets (issue 23): sqlite <= 1.15x untracked; a server 50 ms away <= 1.03x.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, median

KEY = "spark.databricks.mlflow.trackHyperopt.enabled"


def child(spec):
    """In the fresh process: Spark up, then the timed first fmin; prints its JSON."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from common import quiet_logs, spark_session, timed_fmin
    from objectives import sleeper

    if spec.get("hyperopt_first"):
        import hyperopt  # noqa: F401  (the script's first line)
    quiet_logs()
    spark = spark_session(f"local[{spec['parallelism']}]", tracking=spec["tracking"])
    seconds = timed_fmin(spark, "runtime-ml", sleeper(spec["sleep"]), spec["trials"],
                         spec["parallelism"])
    print(json.dumps({"seconds": seconds, "mlflow imported": "mlflow" in sys.modules}))
    spark.stop()


def fresh(spec, uri):
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    env.pop("RUNTIME_ML_DISABLED", None)
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the measured process failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])["seconds"]


def measure(name, uri, sleep, rounds, trials=32, parallelism=4, hyperopt_first=False):
    times = {False: [], True: []}
    name += ", hyperopt imported first" if hyperopt_first else ", hyperopt imported at the fmin"
    for _ in range(rounds):
        for tracking in (False, True):
            spec = {"tracking": tracking, "sleep": sleep, "trials": trials,
                    "parallelism": parallelism, "hyperopt_first": hyperopt_first}
            times[tracking].append(fresh(spec, uri))
    off, on = median(times[False]), median(times[True])
    print(f"{name}: {trials} x {sleep} s at parallelism {parallelism}, first fmin, "
          f"median of {rounds}: untracked {off:.2f} s, tracked {on:.2f} s, ratio {on / off:.2f} "
          f"(runs: off {[round(t, 2) for t in times[False]]}, "
          f"on {[round(t, 2) for t in times[True]]})")
    return on / off


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child")
    options = parser.parse_args()
    if options.child:
        return child(json.loads(options.child))
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import MlflowServer

    with tempfile.TemporaryDirectory() as scratch:
        store = f"sqlite:///{Path(scratch) / 'existing.db'}"
        fresh({"tracking": True, "sleep": 0.0, "trials": 2, "parallelism": 2}, store)  # made once
        for first in (False, True):
            measure("sqlite store that exists", store, 0.05, options.rounds, hyperopt_first=first)
        from tcp_proxy import DelayProxy

        server = MlflowServer(Path(scratch)).start()
        proxy = DelayProxy("127.0.0.1", server.port, one_way=0.025)
        try:
            started = time.monotonic()
            measure("mlflow server on 127.0.0.1", server.uri, 0.5, options.rounds)
            for first in (False, True):
                measure("mlflow server 50 ms away", f"http://127.0.0.1:{proxy.port}", 0.5,
                        options.rounds, hyperopt_first=first)
        finally:
            proxy.stop()
            server.stop()
        print(f"(server rounds took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
