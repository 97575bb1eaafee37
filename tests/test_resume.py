"""Resuming a search from its MLflow runs (spark.runtimeml.hyperopt.resume, trials_from_run), with
real Spark and a real MLflow server. The driver-death cases (SIGKILL of a spark-submit job, Ctrl-C
in a notebook-like session) are in test_cluster_start.py and below."""

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time

import hyperopt
import mlflow
import numpy as np
import pytest
from conftest import runs_of, wait_for_finished_trial_runs
from hyperopt import base, hp, tpe
from objectives import evaluations, resumable

import runtime_ml
from runtime_ml.errors import UserInputError
from runtime_ml.tracking import resume

RESUME = "spark.runtimeml.hyperopt.resume"
SPACE = {
    "model": hp.choice("model", [
        {"kind": "a", "alpha": hp.loguniform("alpha", -5, 0)},
        {"kind": "b", "depth": hp.quniform("depth", 1, 9, 1)},
    ]),
    "lr": hp.uniform("lr", 0, 1),
    "n": hp.randint("n", 5),
}
INTERRUPT_AFTER = None  # interrupting_tpe raises KeyboardInterrupt once this many trials finished


def interrupting_tpe(new_ids, domain, trials, seed):
    """TPE, but Ctrl-C in the caller's thread once INTERRUPT_AFTER trials have finished."""
    finished = trials.count_by_state_unsynced([base.JOB_STATE_DONE, base.JOB_STATE_ERROR])
    if INTERRUPT_AFTER is not None and finished >= INTERRUPT_AFTER:
        raise KeyboardInterrupt
    return tpe.suggest(new_ids, domain, trials, seed)


def run(spark, record_dir, max_evals, trials=None, space=SPACE, seed=0):
    trials = trials if trials is not None else hyperopt.SparkTrials(parallelism=2,
                                                                    spark_session=spark)
    best = hyperopt.fmin(functools.partial(resumable, str(record_dir)), space,
                         algo=interrupting_tpe, max_evals=max_evals, trials=trials,
                         rstate=np.random.default_rng(seed), show_progressbar=False)
    return trials, best


def interrupted(spark, record_dir, max_evals, after):
    """A search stopped by Ctrl-C after `after` finished trials (its SparkTrials)."""
    global INTERRUPT_AFTER
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    INTERRUPT_AFTER = after
    try:
        with pytest.raises(KeyboardInterrupt):
            run(spark, record_dir, max_evals, trials)
    finally:
        INTERRUPT_AFTER = None
    return trials


def finished(trials):
    """Every finished trial, those that raised included (hyperopt leaves them out of .trials)."""
    return {t["tid"]: t for t in trials._dynamic_trials
            if t["state"] in (base.JOB_STATE_DONE, base.JOB_STATE_ERROR)}


def lines(log, text):
    return [r.getMessage() for r in log.records if text in r.getMessage()]


@pytest.fixture
def resume_on(spark):
    spark.conf.set(RESUME, "true")
    yield
    spark.conf.unset(RESUME)


# ------------------------------------------------------------------ pure parts


def test_a_trial_document_reads_back_exactly_through_mlflow_tags():
    trial = {"tid": 7, "state": base.JOB_STATE_DONE,
             "result": {"loss": np.float64(0.1 + 0.2), "status": "ok", "model": object()},
             "misc": {"vals": {"model": [np.int64(1)], "alpha": [], "depth": [np.float64(3.0)],
                               "lr": [5e-324], "n": [np.int64(4)]}}}
    record = resume.trial_record(trial)
    back = resume.record_from_tags(resume.record_tags(record))
    assert back == record
    assert back["vals"] == {"model": [1], "alpha": [], "depth": [3.0], "lr": [5e-324], "n": [4]}
    assert type(back["vals"]["model"][0]) is int and type(back["vals"]["depth"][0]) is float
    assert back["result"] == {"loss": 0.1 + 0.2, "status": "ok"}  # bit for bit, no object

    failed = dict(trial, state=base.JOB_STATE_ERROR, result={"status": "new"},
                  misc={"vals": {"x": [1.5]},
                        "error": ("<class 'ValueError'>", "Traceback...\nValueError: bad x\n")})
    assert resume.trial_record(failed)["error"] == ["<class 'ValueError'>", "ValueError: bad x"]
    assert resume.trial_record(dict(trial, state=base.JOB_STATE_CANCEL)) is None


def test_a_document_longer_than_one_tag_is_split_and_joined():
    record = {"tid": 0, "state": 2, "vals": {f"p{i}": [i / 7] for i in range(800)},
              "result": {"status": "ok", "loss": 1.0}}
    tags = resume.record_tags(record)
    assert len(tags) > 1 and all(len(v) <= resume.TAG_LIMIT for v in tags.values())
    assert resume.record_from_tags(tags) == record
    del tags[f"{resume.TRIAL_TAG}.1"]
    assert resume.record_from_tags(tags) is None  # a broken document is not loaded


def _objective(x):
    return x ** 2


def _other_objective(x):
    return x ** 3


def test_search_keys_follow_space_algorithm_and_code_not_the_data():
    keys = resume.SearchKeys.of(_objective, SPACE, tpe.suggest, "hyperopt.tpe")
    assert keys.search == resume.SearchKeys.of(_objective, SPACE, tpe.suggest,
                                               "hyperopt.tpe").search
    changed_space = dict(SPACE, lr=hp.uniform("lr", 0, 2))
    for other, part in [
        (resume.SearchKeys.of(_objective, changed_space, tpe.suggest, "hyperopt.tpe"), "space"),
        (resume.SearchKeys.of(_objective, SPACE, hyperopt.rand.suggest, "hyperopt.rand"),
         "algorithm"),
        (resume.SearchKeys.of(_other_objective, SPACE, tpe.suggest, "hyperopt.tpe"),
         "objective"),
    ]:
        assert other.search != keys.search
        assert keys.differences(other.tags()) == [part]
    # the data an objective is given is not part of it; its keywords' names are
    assert resume.objective_key(functools.partial(resumable, "/a")) == \
        resume.objective_key(functools.partial(resumable, "/b"))
    assert resume.objective_key(functools.partial(resumable, record_dir="/a")) != \
        resume.objective_key(functools.partial(resumable, "/a"))


def test_search_keys_are_the_same_in_another_process():
    code = ("import sys, json; sys.path[:0] = ['tests', '.']; from test_resume import SPACE, "
            "_objective; from hyperopt import tpe; from runtime_ml.tracking.resume import SearchKeys; "
            "print(SearchKeys.of(_objective, SPACE, tpe.suggest, 'hyperopt.tpe').search)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED="123"),
                           cwd=os.path.dirname(os.path.dirname(__file__)))
    assert other.stdout.strip() == resume.SearchKeys.of(_objective, SPACE, tpe.suggest,
                                                        "hyperopt.tpe").search, other.stderr


def test_the_newest_unfinished_matching_search_is_chosen_and_a_refusal_says_why():
    keys = resume.SearchKeys("s", "a", "o")
    other = resume.SearchKeys("s2", "a", "o")

    def run(run_id, status, search_keys=keys, kind="own", driver="elsewhere:1"):
        tags = dict(search_keys.tags(), **{resume.PARENT_KIND_TAG: kind,
                                           resume.DRIVER_TAG: driver})
        return {"run_id": run_id, "status": status, "tags": tags}

    def choose(*candidates, alive=()):
        return resume.pick_search(list(candidates), keys, "here", lambda pid: pid in alive)

    assert choose(run("new", "FINISHED"), run("old", "KILLED"))[0]["run_id"] == "old"
    assert choose(run("a", "RUNNING", kind="active"), run("b", "FAILED"))[0]["run_id"] == "b"
    assert choose(run("gone", "RUNNING", driver="here:999999"))[0]["run_id"] == "gone"
    chosen, why = choose(run("live", "RUNNING", driver="here:4242"), alive={4242})
    assert chosen is None and "run live is the same search" in why and "still running" in why
    chosen, why = choose(run("d", "KILLED", other), run("e", "FINISHED"))
    assert chosen is None and "run d, has a different space" in why
    assert choose() == (None, "no unfinished search in this experiment")


# ------------------------------------------------------------------ with Spark and MLflow


def test_an_interrupted_search_continues_with_its_trials_and_ends_finished(
        spark, tracked, active, resume_on, tmp_path, runtime_log):
    client, experiment_id = tracked
    spark.conf.unset(RESUME)  # the first run: resume is not needed to be resumable
    first = interrupted(spark, tmp_path, max_evals=12, after=5)
    done_first = finished(first)
    assert len(done_first) >= 5
    evaluated_first = evaluations(tmp_path)

    spark.conf.set(RESUME, "true")
    second, best = run(spark, tmp_path, max_evals=12)

    [parent], children = runs_of(client, experiment_id)
    assert parent.info.status == "FINISHED"
    [line] = lines(runtime_log, "continuing the unfinished search")
    assert parent.info.run_id in line and f"{len(done_first)} finished trials" in line
    # the earlier finished trials, exactly as hyperopt wrote them, count toward max_evals
    loaded = {tid: t for tid, t in finished(second).items() if tid in done_first}
    assert len(loaded) == len(done_first)
    for tid, trial in loaded.items():
        before = done_first[tid]
        assert trial["misc"]["vals"] == before["misc"]["vals"]
        assert trial["result"].get("loss") == before["result"].get("loss")
        if before["state"] == base.JOB_STATE_ERROR:  # raised: back as a failed done trial
            assert trial["result"] == {"status": "fail"}
            assert trial["misc"]["error"][0] == before["misc"]["error"][0]
        else:
            assert trial["result"]["status"] == before["result"]["status"]
    assert len(finished(second)) == 12
    assert evaluations(tmp_path) - evaluated_first == 12 - len(done_first)  # nothing twice
    new_tids = set(finished(second)) - set(done_first)
    assert not new_tids & {t["tid"] for t in first.trials}  # the new trials have new ids
    # the best of all the trials, the loaded ones included
    assert best == second.argmin
    losses = [t["result"]["loss"] for t in second.trials if t["result"].get("status") == "ok"]
    assert second.best_trial["result"]["loss"] == min(losses)

    statuses = [c.info.status for c in children]
    assert statuses.count("FINISHED") + statuses.count("FAILED") == 12
    assert "RUNNING" not in statuses
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    metrics = parent.data.metrics
    assert metrics["total_trials_count"] == 12
    assert metrics["successful_trials_count"] + metrics["failed_trials_count"] == 12
    assert metrics["best_trial_loss"] == min(losses)
    assert parent.data.tags[resume.RESUMED_TAG] == "1"


def test_a_changed_space_starts_fresh_and_says_what_differs(spark, tracked, active, resume_on,
                                                            tmp_path, runtime_log):
    client, experiment_id = tracked
    interrupted(spark, tmp_path, max_evals=8, after=2)
    changed = dict(SPACE, lr=hp.uniform("lr", 0, 2))
    trials, _ = run(spark, tmp_path, max_evals=3, space=changed)
    assert len(trials.trials) == 3
    first, second = lines(runtime_log, "starting a fresh search")
    assert first.endswith("no unfinished search in this experiment.")
    assert "has a different space" in second
    parents, _ = runs_of(client, experiment_id)
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]


def test_a_reused_trials_object_or_tracking_off_is_not_resumed(spark, tracked, active, resume_on,
                                                              tmp_path, runtime_log):
    client, experiment_id = tracked
    trials = interrupted(spark, tmp_path, max_evals=8, after=2)
    held = len(trials.trials)
    run(spark, tmp_path, max_evals=held + 1, trials=trials)  # hyperopt's own way to continue
    assert lines(runtime_log, f"already holds {held} trials")
    spark.conf.set("spark.databricks.mlflow.trackHyperopt.enabled", "false")
    try:
        fresh, _ = run(spark, tmp_path, max_evals=2)
    finally:
        spark.conf.unset("spark.databricks.mlflow.trackHyperopt.enabled")
    assert len(fresh.trials) == 2
    assert lines(runtime_log, "nothing to resume from")


def test_trials_from_run_continues_that_run_inside_an_active_run_left_open(
        spark, tracked, active, tmp_path, runtime_log):
    client, experiment_id = tracked
    first, _ = run(spark, tmp_path, max_evals=4)
    [parent], _ = runs_of(client, experiment_id)

    trials = runtime_ml.trials_from_run(parent.info.run_id, spark_session=spark, parallelism=2)
    assert {t["tid"]: t["misc"]["vals"] for t in trials.trials} == \
        {tid: t["misc"]["vals"] for tid, t in finished(first).items()}
    with mlflow.start_run(run_id=parent.info.run_id):
        run(spark, tmp_path, max_evals=6, trials=trials)
        assert mlflow.active_run().info.run_id == parent.info.run_id
    assert len(finished(trials)) == 6
    [parent_after], children = runs_of(client, experiment_id)
    assert len(children) == 6
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert parent_after.data.metrics["total_trials_count"] == 6
    assert evaluations(tmp_path) == 6


def test_trials_from_run_names_a_wrong_run_and_a_wrong_space(spark, tracked, active, tmp_path):
    client, experiment_id = tracked
    run(spark, tmp_path, max_evals=2)
    [parent], children = runs_of(client, experiment_id)
    with pytest.raises(UserInputError, match=f"pass its parent run, trials_from_run\\("
                                             f"'{parent.info.run_id}'\\)"):
        runtime_ml.trials_from_run(children[0].info.run_id, spark_session=spark)
    plain = client.create_run(experiment_id)
    with pytest.raises(UserInputError, match="holds no search tracked by runtime-ml"):
        runtime_ml.trials_from_run(plain.info.run_id, spark_session=spark)

    trials = runtime_ml.trials_from_run(parent.info.run_id, spark_session=spark)
    with pytest.raises(UserInputError, match=r"have the parameters \['alpha', 'depth', 'lr', "
                                             r"'model', 'n'\], but this fmin's space has \['x'\]"):
        hyperopt.fmin(lambda x: x, hp.uniform("x", 0, 1), algo=tpe.suggest, max_evals=4,
                      trials=trials, show_progressbar=False)
    assert evaluations(tmp_path) == 2


def test_ctrl_c_in_a_notebook_session_then_the_same_cell_again_continues_the_search(
        mlflow_server, tmp_path):
    """The real thing: SIGINT to a Python driver on local[2] mid-fmin, then the cell run again
    with resume turned on in the same session."""
    client = mlflow.MlflowClient(mlflow_server.uri)
    experiment_id = client.create_experiment(f"ctrl-c-{os.getpid()}-{time.time()}")
    job = os.path.join(os.path.dirname(__file__), "resume_job.py")
    kernel = subprocess.Popen(
        [sys.executable, job, str(tmp_path), "first", "--notebook"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server.uri,
                 MLFLOW_EXPERIMENT_ID=experiment_id))
    try:
        wait_for_finished_trial_runs(client, experiment_id, 5, kernel, timeout=180)
        kernel.send_signal(signal.SIGINT)
        out, err = kernel.communicate(timeout=240)
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()
    assert kernel.returncode == 0 and "INTERRUPTED" in out, err[-4000:]
    [line] = [x for x in err.splitlines() if "continuing the unfinished search" in x]
    loaded = int(re.search(r"\): (\d+) finished trials", line).group(1))
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [p.info.status for p in parents] == ["FINISHED"]
    statuses = [c.info.status for c in children]
    assert statuses.count("FINISHED") == 16 and "RUNNING" not in statuses, statuses
    # every trial finished before Ctrl-C is loaded (one cancelled by it may have left its file)
    assert 5 <= loaded <= sum(n.startswith("first-") for n in os.listdir(tmp_path))
    assert sum(n.startswith("again-") for n in os.listdir(tmp_path)) == 16 - loaded
    assert json.loads(out.split("RESULT ", 1)[1].splitlines()[0])["trials"] == 16


def test_runs_a_dead_driver_left_open_are_ended_by_what_their_trial_did(spark, tracked, active,
                                                                        resume_on, tmp_path,
                                                                        runtime_log):
    """The MLflow state a driver killed mid-write leaves: the parent RUNNING, a trial run whose
    result was written but not its end (RUNNING), and one cut off before its result."""
    client, experiment_id = tracked
    spark.conf.unset(RESUME)
    first = interrupted(spark, tmp_path, max_evals=8, after=3)
    done_first = len(finished(first))
    [parent], children = runs_of(client, experiment_id)
    client.update_run(parent.info.run_id, status="RUNNING")
    written = next(c for c in children if c.info.status == "FINISHED")
    client.update_run(written.info.run_id, status="RUNNING")
    cut_off = client.create_run(experiment_id, tags={
        "mlflow.parentRunId": parent.info.run_id, "fmin_uuid": parent.data.tags["fmin_uuid"],
        "runSource": "hyperoptAutoTracking", "trial_id": "99"})
    evaluated_first = evaluations(tmp_path)

    spark.conf.set(RESUME, "true")
    trials, _ = run(spark, tmp_path, max_evals=8)
    [line] = lines(runtime_log, "continuing the unfinished search")
    assert f"{done_first} finished trials" in line
    assert "1 trial runs left RUNNING are ended as KILLED" in line
    assert client.get_run(written.info.run_id).info.status == "FINISHED"  # its trial is loaded
    assert client.get_run(cut_off.info.run_id).info.status == "KILLED"
    assert evaluations(tmp_path) - evaluated_first == 8 - done_first
    assert len(finished(trials)) == 8
    [parent_after], _ = runs_of(client, experiment_id)
    assert parent_after.info.status == "FINISHED"


def test_inside_the_interrupted_run_made_active_again_the_conf_continues_it_and_leaves_it_open(
        spark, tracked, active, resume_on, tmp_path, runtime_log):
    client, experiment_id = tracked
    spark.conf.unset(RESUME)
    first = interrupted(spark, tmp_path, max_evals=8, after=3)
    [parent], _ = runs_of(client, experiment_id)
    spark.conf.set(RESUME, "true")
    with mlflow.start_run(run_id=parent.info.run_id):
        trials, _ = run(spark, tmp_path, max_evals=8)
        assert mlflow.active_run().info.run_id == parent.info.run_id
        assert client.get_run(parent.info.run_id).info.status == "RUNNING"  # left open
    assert len(lines(runtime_log, "continuing the unfinished search")) == 1
    assert len(finished(trials)) == 8
    [_], children = runs_of(client, experiment_id)
    assert sum(c.info.status in ("FINISHED", "FAILED") for c in children) == 8
    assert {c.data.tags["fmin_uuid"] for c in children} == {parent.data.tags["fmin_uuid"]}
    assert len(finished(first)) < 8
