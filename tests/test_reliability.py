"""Reliability under faults and bad input, on real Spark and a real MLflow server.

Each test states one guarantee of README.md's "Guarantees" section. Related guarantees tested
elsewhere: the MLflow server down from the start (test_tracking), runtime-ml's own internals raising
(test_fmin_paths: fail open, hyperopt's loop runs once).
"""

import _thread
import logging
import os
import threading
import time
from pathlib import Path

import hyperopt
import mlflow
import pytest
from conftest import KEY, fmin, leaked_threads, runs_of, tracking_warnings
from hyperopt import STATUS_FAIL, STATUS_OK, hp
from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_RUNNING
from mlflow.entities import ViewType

from runtime_ml.errors import UserInputError

HERE = Path(__file__).parent


def no_active_spark_jobs(spark, wait=10.0):
    """Cancellation is asynchronous in Spark: give it a moment, then report what is still active."""
    deadline = time.monotonic() + wait
    while spark.sparkContext.statusTracker().getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not spark.sparkContext.statusTracker().getActiveJobsIds()


# ------------------------------------------------------------------ 1. bad objective results

RESULTS = {
    "ok": lambda: 0.5,
    "raises": lambda: (_ for _ in ()).throw(RuntimeError("objective blew up")),
    "nan": lambda: float("nan"),
    "text": lambda: "abc",
    "no_status": lambda: {"loss": 1.0},
    "text_loss": lambda: {"loss": "high", "status": STATUS_OK},
    "fail": lambda: {"status": STATUS_FAIL},
}
EXPECTED = {  # case -> (run status, error_type, a fragment of error_message)
    "ok": ("FINISHED", None, None),
    "raises": ("FAILED", "RuntimeError", "RuntimeError: objective blew up"),
    "nan": ("FAILED", "NaNLoss", "loss=nan"),
    "text": ("FAILED", "ValueError", "the objective returned str 'abc'"),
    "no_status": ("FAILED", "KeyError", "dict without 'status'"),
    "text_loss": ("FAILED", "ValueError", "loss='high' (str)"),
    "fail": ("FAILED", None, None),
}


def test_bad_results_are_failed_runs_with_the_reason_and_the_counts_agree(spark, active,
                                                                          tracked):
    client, experiment_id = tracked

    def objective(case):
        return RESULTS[case]()

    trials, _ = fmin(spark, objective, hp.choice("case", sorted(RESULTS)), 28, seed=3)
    [parent], children = runs_of(client, experiment_id)
    assert len(children) == 28 == trials.count_total_trials()
    seen = set()
    for child in children:
        case = child.data.params["case"]
        seen.add(case)
        status, error_type, fragment = EXPECTED[case]
        assert child.info.status == status, case
        assert child.data.tags.get("error_type") == error_type, case
        if fragment:
            assert fragment in child.data.tags["error_message"], case
        assert ("loss" in child.data.metrics) == (case == "ok")
    assert seen == set(RESULTS)  # the seed covers every case
    finished = sum(c.info.status == "FINISHED" for c in children)
    metrics = parent.data.metrics
    assert metrics["successful_trials_count"] == finished
    assert metrics["failed_trials_count"] == 28 - finished
    assert metrics["total_trials_count"] == 28 and metrics["cancelled_trials_count"] == 0
    assert parent.info.status == "FINISHED"


# ------------------------------------------------------------------ 3. the server dies mid-run


def test_server_killed_mid_run_same_result_bounded_time_open_runs_not_reported_finished(
        spark, active, tmp_path, runtime_log):
    from conftest import MlflowServer

    from runtime_ml.tracking import tracker

    def steady(x):
        time.sleep(0.3)
        return (x - 0.3) ** 2

    spark.conf.set(KEY, "false")
    try:
        _, untracked = fmin(spark, steady, hp.uniform("x", 0, 1), 16, seed=9)
    finally:
        spark.conf.unset(KEY)

    server = MlflowServer(tmp_path).start()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.uri)
    killer = threading.Timer(2.0, server.stop)
    started = time.monotonic()
    try:
        killer.start()
        trials, tracked_best = fmin(spark, steady, hp.uniform("x", 0, 1), 16, seed=9)
    finally:
        elapsed = time.monotonic() - started
        killer.cancel()
        server.stop()
        mlflow.set_tracking_uri(previous)
    assert tracked_best == untracked and trials.count_successful_trials() == 16
    [warning] = tracking_warnings(runtime_log)
    assert server.uri in warning and "not marked finished" in warning
    # Bounded: at most one run-creation wait and the final flush deadline on top of the tuning.
    assert elapsed < 16 * 0.3 + tracker.RUN_CREATE_DEADLINE + tracker.FINISH_DEADLINE + 30

    # The same store, served again: what was open when the server died is not FINISHED.
    revived = MlflowServer(tmp_path).start()
    try:
        client = mlflow.MlflowClient(revived.uri)
        parents, children = runs_of(client, "0")
    finally:
        revived.stop()
    [parent] = parents
    assert parent.info.status == "RUNNING" and "total_trials_count" not in parent.data.metrics
    assert len(children) < 16
    for child in children:  # ended only with its result; left open when the server died first
        assert child.info.status in ("RUNNING", "FINISHED")
        if child.info.status == "FINISHED":
            assert "loss" in child.data.metrics


# ------------------------------------------------------------------ 4. timeout and Ctrl-C


def test_timeout_cancels_spark_jobs_keeps_completed_trials_and_ends_every_run(spark, active,
                                                                               tracked):
    client, experiment_id = tracked

    def slow_when_positive(x):
        time.sleep(60 if x > 0 else 0.05)
        return x ** 2

    threads_before = set(threading.enumerate())
    trials, best = fmin(spark, slow_when_positive, hp.uniform("x", -1, 1), 40, trials_timeout=3,
                        seed=4)  # its first two trials are quick
    assert no_active_spark_jobs(spark)
    assert trials._fmin_cancelled_reason == "fmin run timeout"
    assert trials.count_successful_trials() >= 1 and trials.count_cancelled_trials() >= 1
    assert {t["state"] for t in trials._dynamic_trials} <= {JOB_STATE_DONE, JOB_STATE_CANCEL}
    assert best["x"] <= 0  # the outcome hyperopt gives: the best completed trial
    assert leaked_threads(threads_before) == []
    [parent], children = runs_of(client, experiment_id)
    assert parent.info.status == "FINISHED"
    assert {c.info.status for c in children} <= {"FINISHED", "KILLED"}
    killed = [c for c in children if c.info.status == "KILLED"]
    assert killed and all(c.data.tags["trial_status"] == "cancelled" for c in killed)
    assert parent.data.metrics["cancelled_trials_count"] == trials.count_cancelled_trials()


def test_ctrl_c_cancels_spark_jobs_propagates_unchanged_and_ends_every_run(spark, active,
                                                                          tracked):
    client, experiment_id = tracked

    def quick_then_slow(x):
        time.sleep(0.05 if x < 0 else 60)
        return x

    threads_before = set(threading.enumerate())
    timer = threading.Timer(4.0, _thread.interrupt_main)
    timer.start()
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    with pytest.raises(KeyboardInterrupt) as raised:
        hyperopt.fmin(quick_then_slow, hp.uniform("x", -1, 1), algo=hyperopt.rand.suggest,
                      max_evals=40, trials=trials, show_progressbar=False)
    timer.cancel()
    assert type(raised.value) is KeyboardInterrupt
    assert no_active_spark_jobs(spark)
    assert trials._fmin_cancelled_reason == "fmin run cancelled by user"
    assert JOB_STATE_RUNNING not in {t["state"] for t in trials._dynamic_trials}
    assert leaked_threads(threads_before) == []
    [parent], children = runs_of(client, experiment_id)
    assert parent.info.status == "KILLED"
    assert "RUNNING" not in {c.info.status for c in children}
    assert {c.info.status for c in children} <= {"FINISHED", "KILLED"}


# ------------------------------------------------------------------ 5. bad input


@pytest.mark.parametrize("bad, fragment", [("4", "parallelism='4'"), ([4], "parallelism=[4]")])
def test_parallelism_that_is_not_a_number_of_trials_fails_at_construction(spark, active, bad,
                                                                          fragment):
    with pytest.raises(TypeError) as error:
        hyperopt.SparkTrials(parallelism=bad, spark_session=spark)
    assert str(error.value).startswith("'<=' not supported between instances of")
    assert fragment in str(error.value) and "SparkTrials(parallelism=4)" in str(error.value)


@pytest.mark.parametrize("bad", [0, -3])
def test_parallelism_zero_or_negative_runs_on_the_cluster_slots_with_a_warning(spark, active,
                                                                              runtime_log, bad):
    trials, _ = fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 3, parallelism=bad)
    assert len(trials.trials) == 3 and trials.parallelism == 2  # local[2]'s slots
    [warning] = [r.getMessage() for r in runtime_log.records
                 if r.levelno == logging.WARNING and f"parallelism={bad}" in r.getMessage()]
    assert "positive" in warning and "SparkTrials(parallelism=N)" in warning


@pytest.mark.parametrize("bad", [-5, 0, "10"])
def test_a_timeout_that_is_not_positive_seconds_names_value_and_fix(spark, active, bad):
    with pytest.raises(UserInputError) as error:
        hyperopt.SparkTrials(timeout=bad, spark_session=spark)
    assert f"timeout={bad!r}" in str(error.value) and "SparkTrials(timeout=3600)" in str(error.value)
    # fmin(timeout=...) is checked by hyperopt's fmin before SparkTrials (or runtime-ml) sees it.
    with pytest.raises(Exception, match=f"positive value. Given value: {bad}"):
        fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 2, timeout=bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_max_evals_that_evaluates_nothing_fails_before_any_run(spark, active, tracked, bad):
    client, experiment_id = tracked
    with pytest.raises(UserInputError) as error:
        fmin(spark, lambda x: x, hp.uniform("x", 0, 1), bad)
    assert f"max_evals={bad!r}" in str(error.value)
    assert runs_of(client, experiment_id) == ([], [])


def test_an_objective_that_cannot_be_pickled_fails_before_any_run_or_job(spark, active, tracked):
    client, experiment_id = tracked
    lock = threading.Lock()
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup(None))

    def uses_a_lock(x):
        with lock:
            return x

    with pytest.raises(UserInputError) as error:
        fmin(spark, uses_a_lock, hp.uniform("x", 0, 1), 4)
    message = str(error.value)
    assert "uses_a_lock" in message and "cannot be sent to the Spark executors" in message
    assert "lock" in message and "inside the objective" in message
    # advice that works: nothing of the driver's Spark session can be used in the objective
    assert "SparkSession, SparkContext and DataFrames cannot be used inside the objective" in \
        message and "Spark sessions" not in message
    assert runs_of(client, experiment_id) == ([], [])
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup(None)) == jobs_before


def test_a_conf_value_like_yes_warns_once_and_keeps_the_default(spark, active, tracked,
                                                                runtime_log):
    client, experiment_id = tracked
    spark.conf.set(KEY, "yes")
    try:
        fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 2)
    finally:
        spark.conf.unset(KEY)
    [warning] = [r.getMessage() for r in runtime_log.records if KEY in r.getMessage()
                 and r.levelno == logging.WARNING]
    assert "'yes'" in warning and "true" in warning
    parents, children = runs_of(client, experiment_id)  # the default: tracked
    assert len(parents) == 1 and len(children) == 2


@pytest.mark.parametrize("uri, advice", [
    ("localhost:5000", "http://localhost:5000"), ("htp://127.0.0.1:5000", "http://<host>:5000"),
])
def test_a_tracking_uri_mlflow_refuses_warns_once_with_the_fix_and_tunes(spark, active,
                                                                         runtime_log, uri, advice,
                                                                         monkeypatch):
    monkeypatch.delenv("RUNTIME_ML_STRICT")  # the user's URI, not a runtime-ml bug: fails open
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        trials, best = fmin(spark, lambda x: (x - 0.3) ** 2, hp.uniform("x", 0, 1), 4)
    finally:
        mlflow.set_tracking_uri(previous)
    assert trials.count_successful_trials() == 4 and 0 <= best["x"] <= 1
    [warning] = tracking_warnings(runtime_log)
    assert repr(uri) in warning and advice in warning and "runs untracked" in warning


def test_an_experiment_that_refuses_the_parent_run_is_one_warning_and_the_same_result(
        spark, active, tracked, runtime_log):
    client, experiment_id = tracked
    _, tracked_best = fmin(spark, lambda x: (x - 0.3) ** 2, hp.uniform("x", 0, 1), 4, seed=3)
    runs_before = len(client.search_runs([experiment_id], run_view_type=ViewType.ALL))
    client.delete_experiment(experiment_id)  # still the active one: MLflow refuses runs in it
    trials, best = fmin(spark, lambda x: (x - 0.3) ** 2, hp.uniform("x", 0, 1), 4, seed=3)
    assert best == tracked_best and trials.count_successful_trials() == 4
    [warning] = tracking_warnings(runtime_log)
    assert "creating the fmin's parent run" in warning and "no parent run was made" in warning
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.ALL)) == runs_before


# ------------------------------------------------------------------ 6. many fmins, two threads


def _leftovers(spark, threads_before=()):
    """What an fmin could leave behind; threads counted only when they are new since the start
    (an earlier test's tracking thread may still be retrying against a server it killed)."""
    return {
        "new_threads": sorted(t.name for t in threading.enumerate()
                              if t.name.startswith("runtime-ml") and t not in threads_before),
        "env": dict(os.environ),
        "active_run": mlflow.active_run(),
        "job_group": spark.sparkContext.getLocalProperty("spark.jobGroup.id"),
        "active_jobs": list(spark.sparkContext.statusTracker().getActiveJobsIds()),
    }


def test_twenty_fmins_in_a_row_leak_nothing_and_keep_their_runs_apart(spark, active, tracked):
    client, experiment_id = tracked
    threads_before = set(threading.enumerate())
    before = _leftovers(spark, threads_before)
    for index in range(20):
        trials, _ = fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 2, seed=index)
        assert len(trials.trials) == 2
    assert _leftovers(spark, threads_before) == before
    parents, children = runs_of(client, experiment_id)
    assert len(parents) == 20 and len(children) == 40
    per_parent = {}
    for child in children:
        per_parent.setdefault(child.data.tags["mlflow.parentRunId"], []).append(child)
    assert sorted(per_parent) == sorted(p.info.run_id for p in parents)
    assert {len(kids) for kids in per_parent.values()} == {2}
    assert {r.info.status for r in parents + children} == {"FINISHED"}


def test_two_fmins_from_two_threads_at_once_keep_their_runs_and_results_apart(spark, active,
                                                                               tracked):
    client, experiment_id = tracked
    threads_before = set(threading.enumerate())
    before = _leftovers(spark, threads_before)
    results, errors = {}, []

    def tune(name, target):
        try:
            trials, best = fmin(spark, lambda v: (v - target) ** 2, hp.uniform(name, 0, 1), 8,
                                algo=hyperopt.tpe.suggest, parallelism=1)
            results[name] = (trials, best)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=tune, args=("a", 0.2)),
               threading.Thread(target=tune, args=("b", 0.8))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(results["a"][1]) == {"a"} and set(results["b"][1]) == {"b"}
    assert len(results["a"][0].trials) == 8 and len(results["b"][0].trials) == 8
    parents, children = runs_of(client, experiment_id)
    assert len(parents) == 2 and len(children) == 16
    for parent in parents:
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert len(mine) == 8 and len({tuple(c.data.params) for c in mine}) == 1
    assert _leftovers(spark, threads_before) == before


# ------------------------------------------------------------------ 7. secrets


def test_credentials_never_appear_in_runs_artifacts_or_log_lines(spark, active, tracked,
                                                                  monkeypatch, capfd, tmp_path):
    client, experiment_id = tracked
    token, password, in_uri = "tok-5ecret-1", "pw-5ecret-2", "uri-5ecret-3"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    log = logging.getLogger("runtime_ml")
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: records.append(handler.format(record))
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.DEBUG)
    try:
        def logs_and_reports(x):
            import mlflow as worker_mlflow

            worker_mlflow.log_text("worker note", "note.txt")
            return x

        fmin(spark, logs_and_reports, hp.uniform("x", 0, 1), 3)
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(f"http://alice:{in_uri}@127.0.0.1:9")  # unreachable: a warning
        try:
            fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 2)
        finally:
            mlflow.set_tracking_uri(previous)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)

    secrets = (token, password, in_uri)
    assert any("alice:***@127.0.0.1:9" in line for line in records)
    written = "\n".join(records) + capfd.readouterr().err
    assert not any(secret in written for secret in secrets)
    parents, children = runs_of(client, experiment_id)
    assert len(children) == 3
    for run in parents + children:
        logged = [*run.data.params.values(), *run.data.tags.values(), *run.data.metrics]
        assert not any(secret in value for value in logged for secret in secrets)
        for artifact in client.list_artifacts(run.info.run_id):
            text = Path(client.download_artifacts(run.info.run_id, artifact.path,
                                                  str(tmp_path))).read_text()
            assert not any(secret in text for secret in secrets)
