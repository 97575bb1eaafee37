"""The first fmin of a fresh process, MLflow tracking on (the default) vs off.

What a user meets: a new Python process starts Spark (not timed), then runs its first SparkTrials
fmin, without importing mlflow itself; hyperopt imported either right before the fmin, or at the
top of the script before Spark starts (as the seeds' code does: runtime-ml then imports MLflow in
the background meanwhile). Each measurement is its own process, rounds alternate on/off:
- 32 trials of 0.05 s at parallelism 4 on local[4], tracked into a sqlite store that exists;
- 32 trials of 0.5 s at parallelism 4, tracked to a real `mlflow server` on 127.0.0.1, and to the
  same server 50 ms and 500 ms away (tests/tcp_proxy.py holds each direction 25 or 250 ms).
Targets (issue 23): sqlite <= 1.15x untracked; a server 50 ms away <= 1.03x. Issue 37: a server
500 ms away, tracked <= untracked + two round trips (1 s); measured with MLflow's 10 HTTP
connections and with MLFLOW_HTTP_POOL_MAXSIZE=32 (the tracker keeps as many threads).

Beside each time, the CPU the fmin used (from /proc): the driver process's, the MLflow server's
(its process and children), and the whole machine's idle CPU-seconds; what tracking costs in CPU,
and whether the machine had it to spare, is what bounds the ratio on a small machine.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, median, mlflow_server

TICK = os.sysconf("SC_CLK_TCK")


def machine_cpu():
    """(busy, idle) CPU-seconds of the whole machine since boot."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / TICK, idle / TICK


def process_cpu(pids):
    """CPU-seconds used so far by these processes: their own, and their children's that they
    have waited for (a living child is not counted: list it)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / TICK  # utime stime cutime cstime
    return total


def server_pids(server):
    """The server's process and its children (the web server's workers)."""
    root = server.process.pid
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == root:
                        children.append(int(entry))
            except OSError:
                continue
    return [root, *children]


def child(spec):
    """In the fresh process: Spark up, then the timed first fmin; prints its JSON."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from common import quiet_logs, spark_session, timed_fmin
    from objectives import sleeper

    if spec.get("hyperopt_first"):
        import hyperopt  # noqa: F401  (the script's first line)
    quiet_logs()
    spark = spark_session(f"local[{spec['parallelism']}]", tracking=spec["tracking"])
    servers = spec.get("server pids", [])
    before = machine_cpu(), process_cpu([os.getpid()]), process_cpu(servers)
    seconds = timed_fmin(spark, "runtime-ml", sleeper(spec["sleep"]), spec["trials"],
                         spec["parallelism"])
    after = machine_cpu(), process_cpu([os.getpid()]), process_cpu(servers)
    print(json.dumps({"seconds": seconds, "mlflow imported": "mlflow" in sys.modules,
                      "driver cpu": after[1] - before[1], "server cpu": after[2] - before[2],
                      "idle cpu": after[0][1] - before[0][1]}))
    spark.stop()


def fresh(spec, uri):
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, **spec.get("env", {}))
    env.pop("RUNTIME_ML_DISABLED", None)
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the measured process failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def measure(name, uri, sleep, rounds, trials=32, parallelism=4, hyperopt_first=False,
            server=None, round_trip=None, env=None):
    runs = {False: [], True: []}
    name += ", hyperopt imported first" if hyperopt_first else ", hyperopt imported at the fmin"
    for _ in range(rounds):
        for tracking in (False, True):
            spec = {"tracking": tracking, "sleep": sleep, "trials": trials,
                    "parallelism": parallelism, "hyperopt_first": hyperopt_first,
                    "env": env or {},
                    "server pids": server_pids(server) if server else []}
            runs[tracking].append(fresh(spec, uri))

    def med(tracking, key):
        return median([run[key] for run in runs[tracking]])

    off, on = med(False, "seconds"), med(True, "seconds")
    print(f"{name}: {trials} x {sleep} s at parallelism {parallelism}, first fmin, "
          f"median of {rounds}: untracked {off:.2f} s, tracked {on:.2f} s, ratio {on / off:.2f} "
          f"(runs: off {[round(r['seconds'], 2) for r in runs[False]]}, "
          f"on {[round(r['seconds'], 2) for r in runs[True]]})")
    if round_trip:
        print(f"    tracked - untracked: {on - off:.2f} s, {(on - off) / round_trip:.1f} round "
              f"trips of {round_trip * 1000:.0f} ms")
    print(f"    CPU-seconds during the fmin, untracked / tracked: driver "
          f"{med(False, 'driver cpu'):.2f} / {med(True, 'driver cpu'):.2f}, MLflow server "
          f"{med(False, 'server cpu'):.2f} / {med(True, 'server cpu'):.2f}, machine idle "
          f"{med(False, 'idle cpu'):.2f} / {med(True, 'idle cpu'):.2f} "
          f"(of {os.cpu_count()} x the fmin's seconds)")
    return on / off


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["sqlite", "server", "far"],
                        help="one case: the sqlite store, the server near and 50 ms away, or the "
                             "server 500 ms away")
    parser.add_argument("--child")
    options = parser.parse_args()
    if options.child:
        return child(json.loads(options.child))
    if options.only in (None, "sqlite"):
        measure_sqlite(options.rounds)
    if options.only in (None, "server", "far"):
        measure_servers(options.rounds, options.only)
    return 0


def measure_sqlite(rounds):
    with tempfile.TemporaryDirectory() as scratch:
        store = f"sqlite:///{Path(scratch) / 'existing.db'}"
        fresh({"tracking": True, "sleep": 0.0, "trials": 2, "parallelism": 2}, store)  # made once
        for first in (False, True):
            measure("sqlite store that exists", store, 0.05, rounds, hyperopt_first=first)


def measure_servers(rounds, only):
    with mlflow_server() as server:
        from tcp_proxy import DelayProxy  # tests/, on the path with the server

        near = DelayProxy("127.0.0.1", server.port, one_way=0.025)
        far = DelayProxy("127.0.0.1", server.port, one_way=0.25)
        try:
            started = time.monotonic()
            if only != "far":
                measure("mlflow server on 127.0.0.1", server.uri, 0.5, rounds, server=server)
                for first in (False, True):
                    measure("mlflow server 50 ms away", f"http://127.0.0.1:{near.port}", 0.5,
                            rounds, hyperopt_first=first, server=server, round_trip=0.05)
            for pool in (None, "32"):  # MLflow's HTTP connections to a server: 10, or as set
                measure(f"mlflow server 500 ms away, MLFLOW_HTTP_POOL_MAXSIZE={pool or 'unset'}",
                        f"http://127.0.0.1:{far.port}", 0.5, rounds, hyperopt_first=True,
                        server=server, round_trip=0.5,
                        env={"MLFLOW_HTTP_POOL_MAXSIZE": pool} if pool else None)
        finally:
            near.stop()
            far.stop()
        print(f"(server rounds took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
