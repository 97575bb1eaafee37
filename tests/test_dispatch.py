"""runtime-ml's dispatch keeps hyperopt's semantics (real local[2] Spark, real hyperopt)."""

import functools
import json
import os
import threading
import time

import hyperopt
import numpy as np
import pytest
from conftest import fmin, leaked_threads, run_python
from hyperopt import STATUS_OK, hp, rand, tpe
from hyperopt.base import JOB_STATE_ERROR
from objectives import (
    Marker,
    closes_over,
    peak_concurrency,
    quick_then_stalls,
    read_intervals,
    record_interval,
    records,
    started,
)

SPACE = hp.uniform("x", -5, 5)


def sleepy(record_dir, seconds, x):
    record_interval(record_dir, x, seconds)
    return (x - 1) ** 2


def test_never_more_running_trials_than_the_decided_parallelism(spark, active, tmp_path):
    trials, _ = fmin(spark, functools.partial(sleepy, str(tmp_path), 0.4), SPACE, 8, parallelism=2)
    intervals = read_intervals(tmp_path)
    assert len(intervals) == 8 and trials.actual_parallelism == 2
    assert peak_concurrency(intervals) == 2
    assert leaked_threads() == []


def test_python_workers_are_reused_across_trials(spark, active, tmp_path):
    fmin(spark, functools.partial(sleepy, str(tmp_path), 0.0), SPACE, 8, parallelism=1)
    # local[2] keeps at most 2 idle workers; stock SparkTrials forks one per trial (8).
    assert len({i["pid"] for i in read_intervals(tmp_path)}) <= 2


def worker_gc_state(x):
    import gc
    import os

    return {"loss": x ** 2, "status": STATUS_OK, "pid": os.getpid(), "frozen": gc.get_freeze_count()}


def test_a_reused_worker_runs_later_trials_with_its_imports_frozen_out_of_gc(spark, active):
    trials, _ = fmin(spark, worker_gc_state, SPACE, 6, parallelism=1)
    by_worker = {}
    for trial in sorted(trials.trials, key=lambda t: t["tid"]):
        by_worker.setdefault(trial["result"]["pid"], []).append(trial["result"]["frozen"])
    later_trials = [frozen for counts in by_worker.values() for frozen in counts[1:]]
    assert later_trials, by_worker
    # hyperopt, numpy and pyspark alone are tens of thousands of objects
    assert min(later_trials) > 10_000, by_worker


def test_the_worker_heap_is_frozen_once_and_only_when_pyspark_reuses_the_worker():
    code = """
        import gc
        from runtime_ml.worker.isolation import freeze_worker_heap_once
        freeze_worker_heap_once()
        first = gc.get_freeze_count()
        objects = [[] for _ in range(1000)]
        freeze_worker_heap_once()
        print(first, gc.get_freeze_count() - first)
    """
    reused = run_python(code, env={"SPARK_REUSE_WORKER": "1"})
    single_use = run_python(code, env={"SPARK_REUSE_WORKER": ""})
    frozen, added_by_second_call = map(int, reused.stdout.split())
    assert frozen > 1000 and added_by_second_call == 0, reused.stderr
    assert single_use.stdout.split() == ["0", "0"], single_use.stderr


def test_failing_objective_is_a_failed_trial_and_fmin_completes(spark, active):
    def sometimes_fails(x):
        if x > 0:
            raise ValueError(f"bad x {x}")
        return x ** 2

    trials, best = fmin(spark, sometimes_fails, SPACE, 8)
    errors = [t for t in trials._dynamic_trials if t["state"] == JOB_STATE_ERROR]
    assert errors and len(errors) + trials.count_successful_trials() == 8
    error_type, traceback_text = errors[0]["misc"]["error"]
    assert error_type == "<class 'ValueError'>" and "bad x" in traceback_text
    assert best["x"] <= 0


def builds_a_spark_session(x):
    from pyspark.sql import SparkSession

    SparkSession.builder.getOrCreate()  # on an executor: PySpark refuses
    return x


def test_an_objective_building_a_spark_session_fails_with_pysparks_own_reason(spark, active):
    trials, _ = fmin(spark, builds_a_spark_session, SPACE, 2, return_argmin=False)
    assert len(trials._dynamic_trials) == 2  # (trials.trials leaves failed ones out)
    for trial in trials._dynamic_trials:
        error_type, traceback_text = trial["misc"]["error"]
        # PySpark's exception does not survive pickling: its type and traceback travel as text
        assert "PySparkRuntimeError" in error_type, error_type
        assert "CONTEXT_ONLY_VALID_ON_DRIVER" in traceback_text
        assert "builds_a_spark_session" in traceback_text


def prints_then_fails(x):
    print("loading the training data from /data/train.csv")
    raise ValueError("no such file")


def test_a_failed_trials_warning_shows_the_last_lines_it_printed(spark, active, runtime_log):
    fmin(spark, prints_then_fails, SPACE, 2, return_argmin=False)
    warnings = [r.getMessage() for r in runtime_log.records
                if "failed; the last lines it printed" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert all(w.endswith("loading the training data from /data/train.csv") for w in warnings)


def test_a_trials_printed_output_is_kept_to_its_last_characters_and_streams_are_put_back():
    import logging
    import sys

    from runtime_ml.worker.output import PrintedOutput

    stdout, stderr, handlers = sys.stdout, sys.stderr, list(logging.getLogger().handlers)
    with PrintedOutput(limit=40) as printed:
        print("x" * 100)
        print("the end", file=sys.stderr)
        logging.getLogger("users.model").warning("converged")
    assert printed.text() == ("x" * 100 + "\nthe end\nWARNING users.model: converged\n")[-40:]
    assert (sys.stdout, sys.stderr, logging.getLogger().handlers) == (stdout, stderr, handlers)


def test_loss_threshold_stops_proposing(spark, active):
    trials, _ = fmin(spark, lambda x: 0.0, SPACE, 40, loss_threshold=0.5)
    assert trials.count_total_trials() < 40


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tpe_still_finds_the_minimum_of_a_quadratic(spark, active, seed):
    trials, best = fmin(spark, lambda x: (x - 1) ** 2, SPACE, 40, parallelism=2, algo=tpe.suggest,
                        seed=seed)
    assert min(trials.losses()) < 0.05
    assert abs(best["x"] - 1) < 0.25


def test_return_argmin_false_gives_the_space_value(spark, active):
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    best = hyperopt.fmin(lambda p: (p["x"] - 1) ** 2, {"x": SPACE, "name": "fixed"},
                         algo=rand.suggest, max_evals=4, trials=trials, return_argmin=False,
                         show_progressbar=False, rstate=np.random.default_rng(0))
    assert best["name"] == "fixed" and isinstance(best["x"], float)


def test_user_max_queue_len_is_respected(spark, active):
    trials, _ = fmin(spark, lambda x: x ** 2, SPACE, 6, parallelism=2, max_queue_len=3)
    assert trials.count_successful_trials() == 6


def test_hyperopt_seed_env_is_honoured_like_stock(spark, active, monkeypatch):
    monkeypatch.setenv("HYPEROPT_FMIN_SEED", "7")
    picks = []
    for _ in range(2):
        trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark)
        hyperopt.fmin(lambda x: x ** 2, SPACE, algo=rand.suggest, max_evals=3, trials=trials,
                      show_progressbar=False)
        picks.append(sorted(t["misc"]["vals"]["x"][0] for t in trials.trials))
    assert picks[0] == picks[1]
    assert os.environ["HYPEROPT_FMIN_SEED"] == "7"


def test_a_raising_early_stop_fn_is_logged_and_loses_no_slot(spark, active, caplog):
    def broken_stop(trials, *args):
        raise ValueError("user bug in early_stop_fn")

    trials, _ = fmin(spark, lambda x: x ** 2, SPACE, 6, early_stop_fn=broken_stop)
    assert trials.count_successful_trials() == 6
    assert any("user bug in early_stop_fn" in (r.exc_text or str(r.exc_info)) for r in caplog.records
               if r.name == "runtime_ml" and r.exc_info)
    assert leaked_threads() == []


def test_trials_run_in_the_callers_job_group_and_cancelling_it_stops_them(spark, active,
                                                                          tracked, tmp_path):
    """The group is cancelled once the fourth trial has started: at parallelism 2 the first two
    (quick) trials' results are in by then, and the later ones stall until cancelled."""
    from conftest import runs_of

    client, experiment_id = tracked
    sc = spark.sparkContext

    def cancel_once_four_started():
        deadline = time.monotonic() + 120
        while started(str(tmp_path)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        sc.cancelJobGroup("notebook-statement-7")

    sc.setJobGroup("notebook-statement-7", "cell 7", True)
    try:
        canceller = threading.Thread(target=cancel_once_four_started)
        canceller.start()
        trials, _ = fmin(spark, functools.partial(quick_then_stalls, str(tmp_path), 2), SPACE, 30,
                         parallelism=2)
        canceller.join()
    finally:
        for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            sc.setLocalProperty(key, None)
    assert sc.statusTracker().getJobIdsForGroup("notebook-statement-7")
    assert trials._fmin_cancelled_reason == "fmin run cancelled by user"
    assert trials.count_successful_trials() == 2 and trials.count_cancelled_trials() >= 1
    assert trials.count_total_trials() < 30
    [parent], children = runs_of(client, experiment_id)
    assert "RUNNING" not in {c.info.status for c in children} | {parent.info.status}


def pool_of_its_task(x):
    from pyspark import TaskContext

    return {"loss": x, "status": STATUS_OK,
            "pool": TaskContext.get().getLocalProperty("spark.scheduler.pool")}


def test_trials_run_with_the_callers_spark_local_properties(spark, active):
    sc = spark.sparkContext
    sc.setLocalProperty("spark.scheduler.pool", "users-pool")
    try:
        trials, _ = fmin(spark, pool_of_its_task, SPACE, 4)
    finally:
        sc.setLocalProperty("spark.scheduler.pool", None)
    assert [t["result"]["pool"] for t in trials.trials] == ["users-pool"] * 4


def leaves_state_behind(x):
    import logging as logging_
    import os as os_

    seen = {"loss": x ** 2, "status": STATUS_OK, "pid": os_.getpid(), "cwd": os_.getcwd(),
            "leaked env": os_.environ.get("RUNTIME_ML_TEST_LEAK"),
            "root handlers": len(logging_.getLogger().handlers)}
    os_.chdir("/")
    os_.environ["RUNTIME_ML_TEST_LEAK"] = "from an earlier trial"
    logging_.getLogger().addHandler(logging_.NullHandler())
    return seen


def test_a_reused_worker_starts_each_trial_with_the_process_state_of_the_first(spark, active):
    trials, _ = fmin(spark, leaves_state_behind, SPACE, 6, parallelism=1)
    results = [t["result"] for t in sorted(trials.trials, key=lambda t: t["tid"])]
    pids = [r["pid"] for r in results]
    assert len(set(pids)) < len(pids)  # the worker was reused
    assert {r["leaked env"] for r in results} == {None}
    assert len({r["cwd"] for r in results}) == 1 and results[0]["cwd"] != "/"
    assert len({r["root handlers"] for r in results}) == 1


def objective_with_its_own_mlflow(store, experiment, x):
    import mlflow

    before = mlflow.get_tracking_uri()
    if store:
        mlflow.set_tracking_uri(store)
    mlflow.set_experiment(experiment)
    with mlflow.start_run():
        mlflow.log_metric("x", x)
    return {"loss": x ** 2, "status": STATUS_OK, "uri before": before}


@pytest.mark.parametrize("own", ["store", "experiment"])
def test_an_objective_choosing_its_own_mlflow_target_logs_there_as_on_stock(spark, active,
                                                                            tracked, tmp_path,
                                                                            own):
    import mlflow

    client, experiment_id = tracked
    store = f"sqlite:///{tmp_path / 'objective.db'}" if own == "store" else None
    experiment = f"objective-owned-{tmp_path.name}"
    trials, _ = fmin(spark, functools.partial(objective_with_its_own_mlflow, store, experiment), SPACE,
                       4, parallelism=1)
    assert trials.count_successful_trials() == 4
    # the next trial on the reused worker started with the trial's tracking URI again
    assert store not in {t["result"]["uri before"] for t in trials.trials}
    own_client = mlflow.MlflowClient(store or mlflow.get_tracking_uri())
    runs = own_client.search_runs([own_client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert all("x" in r.data.metrics for r in runs)


def test_fresh_worker_per_trial_runs_every_trial_in_a_new_python_worker(spark, active):
    key = "spark.runtimeml.hyperopt.freshWorkerPerTrial"
    spark.conf.set(key, "true")
    try:
        trials, _ = fmin(spark, worker_gc_state, SPACE, 4, parallelism=1)
    finally:
        spark.conf.unset(key)
    assert len({t["result"]["pid"] for t in trials.trials}) == 4


def test_a_worker_imports_only_what_a_bare_pyspark_task_imports():
    # A fresh session, so that no earlier test's imports linger in its Python workers.
    done = run_python("""
        import json
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.master("local[1]").getOrCreate()
        from objectives import heavy_imports
        [bare] = spark.sparkContext.parallelize([0], 1).map(heavy_imports).collect()
        import hyperopt, runtime_ml
        assert runtime_ml.is_active()
        trials = hyperopt.SparkTrials(parallelism=1)
        hyperopt.fmin(heavy_imports, hyperopt.hp.uniform("x", -1, 1), algo=hyperopt.rand.suggest,
                      max_evals=3, trials=trials, show_progressbar=False)
        print(json.dumps([bare["imported"], [t["result"]["imported"] for t in trials.trials]]))
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    bare, trials = json.loads(done.stdout.strip().splitlines()[-1])
    # pyspark 3.5's own worker imports numpy, 4.x's none of these; tracking is on (the trial's run
    # is offered in its environment), yet the objective logs nothing, so mlflow stays out
    assert not {"hyperopt", "scipy", "mlflow"} & set(bare)
    assert trials == [bare] * 3


def test_the_objective_is_unpickled_once_per_worker_and_dropped_after_its_fmin(spark, active,
                                                                               tmp_path):
    pids = {}
    for label in ("first", "second"):
        trials, _ = fmin(spark, functools.partial(closes_over, Marker(str(tmp_path), label)), SPACE, 6,
                           parallelism=2)
        assert {t["result"]["label"] for t in trials.trials} == {label}
        pids[label] = {t["result"]["pid"] for t in trials.trials}
        # stock unpickles the objective for every trial: 6 here (hyperopt 0.2.7's fmin also
        # copies it in this process)
        loads = records(str(tmp_path), "load", label)
        loads.pop(os.getpid(), None)
        assert loads == dict.fromkeys(pids[label], 1)
    both = pids["first"] & pids["second"]
    assert both, pids  # local[2]: the second fmin reuses the first one's workers
    # a worker drops the first fmin's objective when it runs the second fmin's trial
    assert set(records(str(tmp_path), "del", "first")) >= both


def test_the_objectives_pickled_size_is_logged_once_per_fmin(spark, active, runtime_log):
    payload = bytes(300_000)
    fmin(spark, lambda x: x ** 2 + len(payload) * 0, SPACE, 3)
    sizes = [r.getMessage() for r in runtime_log.records if "pickled;" in r.getMessage()]
    assert len(sizes) == 1 and "the objective is 0.3 MB pickled" in sizes[0], sizes


def test_an_objective_over_a_gigabyte_is_a_warning_that_says_to_load_the_data_from_storage():
    from runtime_ml.driver.validation import objective_size_note

    assert objective_size_note(12_345) == (
        "info", "the objective is 12.3 KB pickled; it is sent to the executors once for this fmin.")
    level, text = objective_size_note(3 * 10 ** 9)
    assert level == "warning" and "3000.0 MB" in text
    assert "load the data inside the objective from storage" in text


def one_trial_breaks_the_task_builder(monkeypatch, tids):
    from runtime_ml.driver import dispatcher as dispatch

    real = dispatch.TrialTask.__init__

    def breaking(self, *args, **kwargs):
        if len(tids) == 0:
            tids.append("broke")
            raise RuntimeError("runtime-ml bug while building a task")
        real(self, *args, **kwargs)

    monkeypatch.setattr(dispatch.TrialTask, "__init__", breaking)


def test_an_internal_error_after_launch_fails_only_that_trial(spark, active, monkeypatch, tracked):
    from conftest import runs_of

    client, experiment_id = tracked
    monkeypatch.delenv("RUNTIME_ML_STRICT")
    one_trial_breaks_the_task_builder(monkeypatch, [])
    trials, _ = fmin(spark, lambda x: x ** 2, SPACE, 4, parallelism=2)
    assert trials.count_failed_trials() == 1 and trials.count_successful_trials() == 3
    [failed] = [t for t in trials._dynamic_trials if t["state"] == JOB_STATE_ERROR]
    assert "runtime-ml bug while building a task" in failed["misc"]["error"][1]
    [parent], children = runs_of(client, experiment_id)
    assert sorted(c.info.status for c in children) == ["FAILED"] + ["FINISHED"] * 3


def test_in_strict_mode_an_internal_error_after_launch_raises_after_the_fmin(spark, active,
                                                                              monkeypatch):
    one_trial_breaks_the_task_builder(monkeypatch, [])
    with pytest.raises(RuntimeError, match="runtime-ml bug while building a task"):
        fmin(spark, lambda x: x ** 2, SPACE, 3, parallelism=2)


def test_in_strict_mode_an_internal_error_on_the_executor_travels_back_and_raises_after_the_fmin(
        spark, active):
    """Strict mode goes with the task (an executor's environment need not have it): runtime-ml's
    own step after a trial fails in the Python worker, the trial keeps its result, and the fmin
    raises the worker's error once it ends."""
    from objectives import breaks_runtime_mls_step_after_the_trial

    from runtime_ml.policy import ExecutorInternalError

    trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark)
    with pytest.raises(ExecutorInternalError, match="(?s)ending the objective's MLflow runs "
                                                    ".*runtime-ml's step after the trial broke"):
        hyperopt.fmin(breaks_runtime_mls_step_after_the_trial, SPACE, algo=hyperopt.rand.suggest,
                      max_evals=2, trials=trials, show_progressbar=False)
    assert trials.count_successful_trials() == 2


@pytest.mark.parametrize("states, start, expected", [
    ([2, 2, 1, 0, 0], 0, 3), ([2, 2, 1, 0, 0], 3, 3), ([2, 2, 1, 1], 2, 4), ([0, 2], 5, 0),
    ([], 0, 0)])
def test_the_dispatcher_looks_for_new_trials_from_the_first_one_not_launched(states, start,
                                                                            expected):
    from runtime_ml.driver.dispatcher import first_new

    assert first_new([{"state": state} for state in states], start) == expected
