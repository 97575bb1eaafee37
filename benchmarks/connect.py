"""Spark Connect against classic Spark: where a trial's job spends its time, and runtime-ml's first
and second fmin beside the floor, tracking off and on.

Each measurement runs in a new process with a new session (cold_start.fresh_session): classic
`local[N]`, or PySpark's local Connect server for the same master. Parts:
- launch: 20 one-task jobs in a row on local[2] through each way a trial's job can go: classic
  (an RDD's mapPartitions, as stock and runtime-ml's classic path run trials); Connect
  `mapInArrow` as a plain program writes it (a new frame per job, a DDL schema, `collect`, the row
  made with pyarrow's from_pydict: runtime-ml's trial job before #36); Connect `mapInArrow` in
  runtime-ml's shape (the input frame made once, a StructType, `toArrow`, the row built from its
  buffers: the floor, with nothing else of runtime-ml in it). The first job, the median of 20 in a
  row, and the median of each part of a job over 20 more (below). Then runtime-ml's own trial: 40
  instant trials at parallelism 1 (`rand`), per trial, in the first and the second fmin. Every
  session has its UI on, as on a cluster.
- The parts of a job (the method): the job's function records when it starts and ends
  (`time.time()`, one machine); Spark's REST API (the session's UI, on 127.0.0.1) says when the
  scheduler got the job and when it ended; the client times the frame's building and the action.
  build: the client makes the job (with any request for a schema); to job: the action's request
  until the scheduler has the job (the server's planning); to function: the task's launch and the
  Python worker's start of the function; function: reading the one input row; to job end: the
  row's way to the JVM and the task's end; back: from the job's end to the client holding the row.
- fmin: 32 trials of 0 s at parallelism 2 on local[2] (launching) and 32 of 0.5 s at parallelism 4
  on local[4] (efficiency = ideal / actual), the first and the second fmin of a fresh session,
  classic and Connect, untracked and in the default configuration (tracking on, MLflow's default
  store); beside the floor: the same schedule of bare one-task jobs from P threads (classic: RDD
  jobs, job_floor.py; Connect: mapInArrow jobs in runtime-ml's shape).
--unix-sockets: every session with spark.python.unix.domain.socket.enabled (Spark 4.1+), so the
JVM and its Python workers talk over Unix domain sockets instead of TCP.
"""

import argparse
import json
import math
import socket
import statistics
import struct
import sys
import time
import urllib.request
from datetime import datetime

from cold_start import TRACKED, fresh_session, med
from common import print_table, quiet_logs, spark_session, timed_fmin

CLASSIC, CONNECT = "classic", "Spark Connect"
RDD = "rdd"
PLAIN = "mapInArrow, plain"  # runtime-ml's trial job before #36
SHAPED = "mapInArrow, runtime-ml's shape"  # runtime-ml's trial job now, bare: the floor
PARTS = ("build", "to job", "to function", "function", "to job end", "back")
UNIX_SOCKETS = "spark.python.unix.domain.socket.enabled"
JOBS = 20


# ------------------------------------------------------------------ in the child process

def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child(spec):
    if spec.get("mode") == TRACKED:
        import hyperopt  # noqa: F401  (the seeds' job's first line)
    quiet_logs()
    # the UI on (as on a cluster), on a port of its own: the REST API the job parts are read from
    conf = dict(spec.get("conf", {}), **{"spark.ui.enabled": "true",
                                         "spark.ui.port": str(free_port())})
    spark = spark_session(spec["master"], tracking=spec.get("mode") == TRACKED,
                          remote=spec["remote"], conf=conf)
    try:
        return {"jobs": timed_jobs, "fmin": timed_fmins, "floor": timed_floor}[spec["what"]](
            spark, spec, conf)
    finally:
        spark.stop()


def shaped_job(spark, one_row, function):
    """A one-task mapInArrow job as runtime-ml's ConnectLauncher makes one; returns its bytes."""
    from runtime_ml.driver.launcher import output_schema

    frame = one_row.mapInArrow(function, output_schema())
    return lambda: frame.toArrow().column(0)[0].as_py()


def shaped_function(seconds=0.0, timed=False):
    """The job's function: reads its input, sleeps, and returns its start and end times (or
    nothing) in a row built from its buffers (runtime_ml.worker.task.binary_row: pyarrow only)."""

    def run(batches):
        import time

        from runtime_ml.worker.task import binary_row

        entered = time.time()
        for _ in batches:
            pass
        time.sleep(seconds)
        yield binary_row(struct.pack("<dd", entered, time.time()) if timed else b"")

    return run


def plain_function(batches):
    import time

    import pyarrow

    entered = time.time()
    for _ in batches:
        pass
    yield pyarrow.RecordBatch.from_pydict({"entered": [entered], "left": [time.time()]})


def timed_rows(partition):
    import time

    entered = time.time()
    for _ in partition:
        pass
    yield entered, time.time()


def job_maker(spark, shape):
    """A function that builds one job and returns the action that runs it, giving the function's
    (start, end) times."""
    if shape == RDD:
        return lambda: spark.sparkContext.parallelize([0], 1).mapPartitions(timed_rows).collect
    if shape == PLAIN:
        def plain():
            frame = spark.range(1, numPartitions=1).mapInArrow(plain_function,
                                                               "entered double, left double")
            return lambda: tuple(frame.collect()[0])
        return plain
    one_row, function = spark.range(1, numPartitions=1), shaped_function(timed=True)

    def shaped():
        run = shaped_job(spark, one_row, function)
        return lambda: struct.unpack("<dd", run())

    return shaped


def rest_jobs(conf):
    base = f"http://127.0.0.1:{conf['spark.ui.port']}/api/v1/applications"
    with urllib.request.urlopen(base, timeout=10) as answer:
        app = json.load(answer)[0]["id"]

    def jobs():
        with urllib.request.urlopen(f"{base}/{app}/jobs", timeout=10) as answer:
            return {job["jobId"]: job for job in json.load(answer)}

    return jobs


def epoch(text):
    return datetime.strptime(text.replace("GMT", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def timed_jobs(spark, spec, conf):
    """The first job's parts; the median of JOBS jobs in a row (as a trial follows a trial); the
    median parts of JOBS more, each followed by a question to the REST API."""
    make, jobs = job_maker(spark, spec["shape"]), rest_jobs(conf)

    def parts_of_one():
        before = set(jobs())
        started = time.time()
        action = make()
        built = time.time()
        output = action()
        entered, left = output[0] if spec["shape"] == RDD else output
        held = time.time()
        deadline, new = time.monotonic() + 5, []
        while time.monotonic() < deadline:  # the UI lists a job once its end is processed
            new = [job for key, job in jobs().items() if key not in before]
            if len(new) == 1 and "completionTime" in new[0]:
                break
            time.sleep(0.05)
        submitted, completed = epoch(new[0]["submissionTime"]), epoch(new[0]["completionTime"])
        return dict(zip(PARTS, (built - started, submitted - built, entered - submitted,
                                left - entered, completed - left, held - completed), strict=True))

    first = parts_of_one()
    in_a_row = []
    for _ in range(JOBS):
        started = time.perf_counter()
        make()()
        in_a_row.append(time.perf_counter() - started)
    parts = [parts_of_one() for _ in range(JOBS)]
    return {"cold": sum(first.values()), "warm": statistics.median(in_a_row),
            "parts": {part: statistics.median(p[part] for p in parts) for part in PARTS},
            "first parts": first}


def timed_fmins(spark, spec, conf):
    from objectives import sleeper

    mode = "runtime-ml"
    return {phase: timed_fmin(spark, mode, sleeper(spec["sleep"]), spec["max_evals"],
                              spec["parallelism"], algo=spec.get("algo", "tpe"))
            for phase in ("cold", "warm")}


def connect_schedule(spark, jobs, parallelism, seconds):
    """`jobs` one-task mapInArrow jobs in runtime-ml's shape, each sleeping `seconds`, from
    `parallelism` threads: Connect's floor for that schedule."""
    from job_floor import timed_threads

    one_row = spark.range(1, numPartitions=1)
    return timed_threads(jobs, parallelism,
                         lambda: shaped_job(spark, one_row, shaped_function(seconds))())


def timed_floor(spark, spec, conf):
    from job_floor import timed_schedule

    schedule = connect_schedule if spec["remote"] else timed_schedule
    return {phase: schedule(spark, spec["max_evals"], spec["parallelism"], spec["sleep"])
            for phase in ("cold", "warm")}


# ------------------------------------------------------------------ in the parent

def measure(spec, rounds):
    return [fresh_session(spec, script=__file__) for _ in range(rounds)]


def launch(options, conf):
    rows, breakdown, medians = [], [], {}
    for kind, shape in ((CLASSIC, RDD), (CONNECT, PLAIN), (CONNECT, SHAPED)):
        samples = measure({"what": "jobs", "master": "local[2]", "shape": shape, "conf": conf,
                           "remote": kind == CONNECT}, options.rounds)
        medians[shape] = med(samples, "warm")
        rows.append([kind, shape, f"{med(samples, 'cold'):.3f}", f"{medians[shape] * 1000:.0f}"])
        breakdown.append([kind, shape] + [
            f"{statistics.median(s['parts'][part] for s in samples) * 1000:.1f}" for part in PARTS])
        breakdown.append(["", "first job"] + [
            f"{statistics.median(s['first parts'][part] for s in samples) * 1000:.0f}"
            for part in PARTS])
    for kind in (CLASSIC, CONNECT):
        samples = measure({"what": "fmin", "master": "local[2]", "sleep": 0.0, "max_evals": 40,
                           "parallelism": 1, "algo": "rand", "conf": conf,
                           "remote": kind == CONNECT}, options.rounds)
        medians[kind] = med(samples, "warm") / 40
        rows.append([kind, "runtime-ml trial (p=1)", f"{med(samples, 'cold') / 40:.3f}",
                     f"{medians[kind] * 1000:.0f}"])
    print(f"\none-task job launch latency on local[2], {options.rounds} fresh session(s) each "
          "(runtime-ml trial: a first and a second fmin of 40 instant trials, per trial)")
    print_table(["session", "job", "first job s", "later jobs ms (median)"], rows)
    print("\nwhere a job's time goes, ms (median of the later jobs; then the first job)")
    print_table(["session", "job", *PARTS], breakdown)
    print(f"\nrm trial over Connect / classic rm trial: {medians[CONNECT] / medians[CLASSIC]:.2f} "
          f"(target <= 1.3); Connect floor ({SHAPED}) / classic RDD job: "
          f"{medians[SHAPED] / medians[RDD]:.2f}; rm trial over Connect / Connect floor: "
          f"{medians[CONNECT] / medians[SHAPED]:.2f}")


def fmin(options, conf):
    rows = []
    for n, sleep, p in ((32, 0.0, 2), (32, 0.5, 4)):
        ideal = math.ceil(n / p) * sleep
        for kind in (CLASSIC, CONNECT):
            spec = {"master": f"local[{p}]", "sleep": sleep, "max_evals": n, "parallelism": p,
                    "conf": conf, "remote": kind == CONNECT}
            floor = measure(dict(spec, what="floor"), options.rounds)
            for run, mode in (("floor: bare jobs", None), ("runtime-ml untracked", "untracked"),
                              ("runtime-ml tracked", TRACKED)):
                samples = floor if mode is None else measure(dict(spec, what="fmin", mode=mode),
                                                             options.rounds)
                row = [f"{n} x {sleep} s, p={p}", kind, run]
                for phase in ("cold", "warm"):
                    seconds = med(samples, phase)
                    row += [f"{seconds:.2f}",
                            f"{ideal / seconds:.2f}" if ideal else f"{n / seconds:.1f}/s",
                            f"{seconds / med(floor, phase):.2f}"]
                rows.append(row)
    print(f"\nfirst and second fmin of a fresh session, {options.rounds} session(s) each "
          "(efficiency, or trials/s for 0 s trials; x floor: against the same schedule of bare "
          "jobs on the same kind of session)")
    print_table(["trials", "session", "run", "first fmin s", "eff", "x floor", "second fmin s",
                 "eff", "x floor"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="part", help="launch, fmin (default: both)")
    parser.add_argument("--rounds", type=int, default=1, help="fresh sessions per point")
    parser.add_argument("--unix-sockets", action="store_true",
                        help=f"every session with {UNIX_SOCKETS} true (Spark 4.1+)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print("RESULT " + json.dumps(child(json.loads(options.child))))
        return 0
    conf = {UNIX_SOCKETS: "true"} if options.unix_sockets else {}
    for part in options.parts or ("launch", "fmin"):
        {"launch": launch, "fmin": fmin}[part](options, conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
