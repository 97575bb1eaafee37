"""Run by tests/test_connect.py in its own process: the seeds' kind of job on a Spark Connect
session (argv[1]: `local[2]` for PySpark's local Connect server, or `sc://host:port`), printed as
JSON, one entry per part ({"error": traceback} when a part raised). argv[2]: a directory for the
objectives' records; MLFLOW_TRACKING_URI and RUNTIME_ML_TEST_EXPERIMENT name the tracking server
and a new experiment."""

import functools
import json
import os
import sys
import threading
import time
import traceback

from pyspark.sql import SparkSession

REMOTE = sys.argv[1] if len(sys.argv) > 1 else "local[2]"
RECORDS = sys.argv[2]
spark = SparkSession.builder.remote(REMOTE).getOrCreate()

import mlflow  # noqa: E402
from hyperopt import STATUS_OK, SparkTrials, fmin, hp, tpe  # noqa: E402

import runtime_ml  # noqa: E402

out = {"active": runtime_ml.is_active(), "session": type(spark).__module__}
experiment = mlflow.set_experiment(os.environ["RUNTIME_ML_TEST_EXPERIMENT"])
client = mlflow.MlflowClient()


def part(name):
    """Run the decorated function now; its result (or its traceback) goes to out[name]."""

    def run(function):
        try:
            out[name] = function()
        except Exception:
            out[name] = {"error": traceback.format_exc()[-6000:]}
        return function

    return run


def objective(params):
    import os

    import mlflow

    mlflow.log_metric("seen_x", params["x"])
    with open(os.path.join(RECORDS, f"run-{os.getpid()}-{time.time():.6f}"), "w"):
        pass
    return {"loss": (params["x"] - 1) ** 2, "status": STATUS_OK}


def imported_so_far(x):
    """What the trial's Python worker has imported, after the trials it ran before this one."""
    import os
    import sys

    return {"loss": x ** 2, "status": STATUS_OK, "pid": os.getpid(),
            "imported": sorted(m for m in ("pandas", "hyperopt", "mlflow") if m in sys.modules)}


@part("worker imports")  # first: the session's workers have run nothing else yet
def worker_imports():
    trials = SparkTrials(parallelism=1)
    mlflow.set_experiment(os.environ["RUNTIME_ML_TEST_EXPERIMENT"] + "-imports")  # tracked aside
    try:
        fmin(imported_so_far, hp.uniform("x", -1, 1), algo=tpe.suggest, max_evals=3,
             trials=trials, show_progressbar=False)
    finally:
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return {"imported": [t["result"]["imported"] for t in trials.trials],
            "workers": len({t["result"]["pid"] for t in trials.trials})}


@part("tuned")
def tuned():
    space = {"x": hp.uniform("x", -3, 3), "kind": hp.choice("kind", ["a", "b"])}
    trials = SparkTrials()  # the active session, as stock finds it
    started = time.monotonic()
    best = fmin(objective, space, algo=tpe.suggest, max_evals=8, trials=trials,
                show_progressbar=False)
    return {"seconds": time.monotonic() - started, "best": sorted(best),
            "statuses": trials.statuses(), "parallelism": trials.actual_parallelism,
            "executions": len(os.listdir(RECORDS))}


@part("runs")
def runs():
    found = client.search_runs([experiment.experiment_id])
    children = [r for r in found if "mlflow.parentRunId" in r.data.tags]
    return {"parents": len(found) - len(children), "children": len(children),
            "child statuses": sorted({r.info.status for r in children}),
            "children with seen_x": sum("seen_x" in r.data.metrics for r in children),
            "kind params": sorted({r.data.params.get("kind") for r in children})}


@part("seeds' workflow")
def seeds_workflow():
    from runtime_ml.demo import tune  # the seeds' workflow, as `make demo` runs it

    return {"best": sorted(tune(6))}


def failing(x):
    with open(os.path.join(RECORDS, f"fail-{os.getpid()}-{time.time():.6f}"), "w"):
        pass
    raise ValueError(f"bad x {x}")


@part("failures")
def failures():
    failed = SparkTrials(parallelism=2)
    raised = None
    try:
        fmin(failing, hp.uniform("x", 0, 1), algo=tpe.suggest, max_evals=3, trials=failed,
             show_progressbar=False)
    except Exception as error:
        raised = f"{type(error).__name__}: {error}"
    return {"errors": [t["misc"]["error"][0] for t in failed._dynamic_trials],
            "executions": sum(n.startswith("fail-") for n in os.listdir(RECORDS)),
            "raised": raised}


def slow(x):
    time.sleep(60)
    return x ** 2


def slow_recorded(way, x):
    with open(os.path.join(RECORDS, f"slow-{way}-{os.getpid()}-{time.time():.6f}"), "w"):
        pass
    return slow(x)


def running_operations():
    """The session's operations still running (interruptAll names what it interrupted)."""
    return sorted(spark.interruptAll())


@part("timeout")
def timeout():
    timed = SparkTrials(parallelism=2, timeout=4)
    started = time.monotonic()
    fmin(slow, hp.uniform("x", -1, 1), algo=tpe.suggest, max_evals=4, trials=timed,
         show_progressbar=False, return_argmin=False)
    time.sleep(1)
    return {"seconds": time.monotonic() - started, "reason": timed._fmin_cancelled_reason,
            "states": sorted({t["state"] for t in timed._dynamic_trials}),
            "running operations": running_operations(), "tags left": sorted(spark.getTags())}


@part("interrupted")
def interrupted():
    spark.addTag("users-cell")
    cancel = threading.Timer(4, lambda: spark.interruptTag("users-cell"))
    cancel.start()
    trials = SparkTrials(parallelism=2)
    started = time.monotonic()
    try:
        fmin(slow, hp.uniform("x", 0.5, 1), algo=tpe.suggest, max_evals=4,
             trials=trials, show_progressbar=False, return_argmin=False)
    finally:
        cancel.join()
        spark.removeTag("users-cell")
    time.sleep(1)
    return {"seconds": time.monotonic() - started, "reason": trials._fmin_cancelled_reason,
            "states": sorted({t["state"] for t in trials._dynamic_trials}),
            "running operations": running_operations()}


@part("held proposal")
def held_proposal():
    """Each way a Connect fmin is cancelled, inside hyperopt's insert/refresh window."""
    from interleavings import AFTER_INSERT, HeldProposal, fmin_within, state_of, unfinished

    def interrupt_the_callers_tag():  # once the first trial runs, under the caller's tag
        deadline = time.monotonic() + 30
        # this way's own trial: a cancelled earlier trial's Python worker may still start its
        # objective after its job ended (the worker is killed seconds later) and leave a record
        while not any(n.startswith("slow-tag-") for n in os.listdir(RECORDS)):
            assert time.monotonic() < deadline, "the first trial never started"
            time.sleep(0.01)
        spark.interruptTag("users-cell-22")

    # A proposal waiting for its slot while the first trial runs: stock's queue of one.
    spark.conf.set("spark.runtimeml.hyperopt.sequentialAtParallelismOne", "false")
    seen = {}  # Connect tags belong to a thread: the fmin's thread adds the caller's tag
    for way, act, timeout in (("timeout", None, 2), ("tag", interrupt_the_callers_tag, None)):
        trials = SparkTrials(parallelism=1)
        held = HeldProposal(trials, proposal=2, window=AFTER_INSERT, act=act, until=lambda trials=trials: (
            trials._fmin_cancelled and state_of(trials, 0) == 4))
        try:
            fmin_within(60, trials, before=lambda: spark.addTag("users-cell-22"),
                        fn=functools.partial(slow_recorded, way), space=hp.uniform("x", 0, 1),
                        algo=tpe.suggest, max_evals=4, timeout=timeout, show_progressbar=False,
                        return_argmin=False)
        except AssertionError as error:
            raise AssertionError(f"cancelled by {way}: {error}") from None
        seen[way] = {"waited out": held.waited_out, "held": held.held_state(),
                     "unfinished": unfinished(trials), "reason": trials._fmin_cancelled_reason}
    spark.conf.unset("spark.runtimeml.hyperopt.sequentialAtParallelismOne")
    return seen


@part("switched off")
def switched_off():
    spark.conf.set("spark.databricks.mlflow.trackHyperopt.enabled", "false")
    before = len(client.search_runs([experiment.experiment_id]))
    fmin(lambda x: x ** 2, hp.uniform("x", 0, 1), algo=tpe.suggest, max_evals=2,
         trials=SparkTrials(parallelism=2), show_progressbar=False)
    return {"new runs": len(client.search_runs([experiment.experiment_id])) - before}


spark.stop()
print("RESULT " + json.dumps(out))
