"""MLflow tracking against a real MLflow server on 127.0.0.1 (sqlite backend) and real Spark."""

import functools
import json
import logging
import os
import socket
import threading
import time

import hyperopt
import mlflow
import numpy as np
import pytest
from conftest import KEY, fmin, run_python, runs_of, tracking_warnings
from hyperopt import STATUS_OK, hp, rand, tpe

from runtime_ml import server_health
from runtime_ml.compat import mlflow_private
from runtime_ml.patching import original_of
from runtime_ml.tracking import failures, records, search, store
from runtime_ml.worker.trial_run import PARENT_RUN_TAG

# ------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize("uri, active_experiment, argument, meant", [
    ("http://h:5000", None, None, True),
    ("http://h:5000/", "7", None, True),
    ("http://h:5000", "8", None, False),  # mlflow.set_experiment(another)
    ("http://h:5000", None, "8", False),  # start_run(experiment_id=another)
    ("sqlite:///elsewhere.db", None, None, False),  # mlflow.set_tracking_uri(another)
])
def test_a_start_run_in_the_objective_means_the_trial_run_only_when_it_targets_it(
        uri, active_experiment, argument, meant):
    from runtime_ml.worker.trial_run import pending_trial_environment, targets_trial_run

    environ = pending_trial_environment("f00d42", 3, "http://h:5000", "7")
    assert targets_trial_run(environ, uri, active_experiment, argument) is meant


def test_an_objective_on_an_executor_that_cannot_reach_the_server_logs_locally_as_in_stock(
        monkeypatch, caplog, tmp_path):
    from conftest import free_port

    from runtime_ml.worker import trial_run

    unreachable = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    environ = dict(trial_run.pending_trial_environment("f00d42", 3, unreachable, "7"),
                   MLFLOW_TRACKING_URI=unreachable, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0")
    searches = []
    real_find = trial_run.find_trial_run
    monkeypatch.setattr(trial_run, "find_trial_run",
                        lambda *args, **kw: searches.append(1) or real_find(*args, **kw))
    monkeypatch.setattr(trial_run, "_unreachable_until", {})
    # as in a fresh worker: MLflow's URI and experiment come from the environment
    monkeypatch.setattr(trial_run.mlflow_private, "mlflow_fluent_state", lambda: (None, None))
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: os.environ["MLFLOW_TRACKING_URI"])
    for _ in range(2):
        with monkeypatch.context() as env:
            for name, value in environ.items():
                env.setenv(name, value)
            env.delenv(trial_run.RUN_ID, raising=False)
            trial_run._offer_trial_run(None)
            # the objective's calls go to the executor's default store, as in stock
            assert "MLFLOW_TRACKING_URI" not in os.environ and trial_run.RUN_ID not in os.environ
    assert searches == [1]  # the next trial on this worker does not ask again
    [warning] = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
    assert unreachable in warning and "local store" in warning


def test_params_are_values_with_choice_indexes_and_inactive_branches_omitted():
    space = {
        "penalty": hp.choice("penalty", ["l1", "l2"]),
        "n": hp.choice("n", np.arange(4, 12)),
        "model": hp.choice("model", [{"kind": "svm", "C": hp.uniform("C", 0, 1)},
                                     {"kind": "tree", "depth": hp.quniform("depth", 1, 9, 1)}]),
    }
    choices = records.choice_labels(space)
    assert choices == {"penalty", "n", "model"}
    vals = {"penalty": [1], "n": [np.int64(3)], "model": [0], "C": [np.float64(0.25)],
            "depth": []}
    assert records.trial_params(space, vals, choices) == {
        "penalty": "l2", "n": "7", "model.kind": "svm", "model.C": "0.25",
        "penalty_index": "1", "n_index": "3", "model_index": "0",
    }


def test_a_bare_parameter_space_is_named_by_its_label():
    assert records.trial_params(hp.uniform("x", 0, 1), {"x": [0.5]}, set()) == {"x": "0.5"}


def test_keys_values_and_errors_fit_mlflow():
    assert records.param_key("a b/c:d-e.f_g") == "a b/c:d-e.f_g"
    assert records.param_key("weird{key}") == "weird_key_"
    assert len(records.param_text("x" * 10000)) == records.MAX_PARAM_VALUE
    assert records.error_summary(
        ("<class 'ValueError'>", "Traceback (most recent call last):\n  ...\nValueError: bad x\n")
    ) == ("ValueError", "ValueError: bad x")
    assert len(records.space_text({f"p{i}": hp.uniform(f"p{i}", 0, 1) for i in range(400)})) \
        <= records.MAX_TAG_VALUE


def test_a_failed_mlflow_call_stops_tracking_only_when_the_store_no_longer_answers():
    from mlflow.exceptions import MlflowException

    refused = MlflowException("Changing param values is not allowed")
    assert failures.failure_kind(refused, lambda: True) == "refused"
    assert failures.failure_kind(refused, lambda: False) == "unreachable"
    assert failures.failure_kind(ConnectionRefusedError(), lambda: True) == "unreachable"
    assert failures.failure_kind(TimeoutError(), lambda: True) == "unreachable"
    assert failures.failure_kind(failures.TrackingStopped(), lambda: True) == "unreachable"
    for ours in (TypeError("runtime-ml's bug"), ValueError("runtime-ml's bug"), RuntimeError()):
        assert failures.failure_kind(ours, lambda: True) == "internal", ours


def test_in_strict_mode_any_error_of_tracking_that_is_not_the_stores_raises_after_the_fmin(
        spark, active, tracked, monkeypatch):
    """A ValueError of runtime-ml's own while it writes a trial's run is not 'MLflow refused a
    write': strict mode raises it once the fmin ends, and every trial has its result."""
    def broken(*args):
        raise ValueError("runtime-ml bug while naming params")

    monkeypatch.setattr(records, "trial_params", broken)
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    with pytest.raises(ValueError, match="runtime-ml bug while naming params"):
        hyperopt.fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2,
                      trials=trials, show_progressbar=False)
    assert trials.count_successful_trials() == 2


def test_executor_uri_for_local_stores():
    here = {"127.0.0.1", "localhost"}
    assert store.executor_tracking_uri("http://mlflow:5000", {"10.0.0.9"}, here) == (
        "http://mlflow:5000", None)
    assert store.executor_tracking_uri("sqlite:///runs.db", {"127.0.0.1"}, here, cwd="/w") == (
        "sqlite:////w/runs.db", None)
    assert store.executor_tracking_uri("mlruns", set(), here, cwd="/w") == ("/w/mlruns", None)
    uri, why = store.executor_tracking_uri("sqlite:////abs/runs.db", {"10.0.0.9"}, here)
    assert uri is None
    assert "sqlite:////abs/runs.db" in why and "10.0.0.9" in why and "set_tracking_uri" in why



def test_executors_on_other_machines_reach_a_loopback_server_at_the_drivers_address():
    here = {"127.0.0.1", "localhost", "10.1.0.20"}
    asked = []

    def answers_on(address):
        def answers(uri):
            asked.append(uri)
            return f"//{address}:" in uri or f"@{address}:" in uri
        return answers

    for loopback in ("http://localhost:5000", "http://127.0.0.1:5000", "http://[::1]:5000"):
        uri, note = store.executor_tracking_uri(
            loopback, {"10.1.0.31"}, here, driver_address="10.1.0.20",
            answers=answers_on("10.1.0.20"))
        assert uri == "http://10.1.0.20:5000" and "10.1.0.31" in note and loopback in note
    # credentials and path stay; what is logged is redacted
    uri, note = store.executor_tracking_uri(
        "https://user:secret@localhost:5443/mlflow", {"10.1.0.31"}, here,
        driver_address="10.1.0.20", answers=answers_on("10.1.0.20"))
    assert uri == "https://user:secret@10.1.0.20:5443/mlflow" and "secret" not in note
    # executors on this machine keep the URI as it is, and nothing is asked
    asked.clear()
    assert store.executor_tracking_uri(
        "http://localhost:5000", {"127.0.0.1", "10.1.0.20"}, here, driver_address="10.1.0.20",
        answers=answers_on("10.1.0.20")) == ("http://localhost:5000", None)
    assert asked == []
    # on a cluster whose executors have not registered yet (or may be added later), they may
    # run elsewhere: the driver's address, when the server answers there
    uri, note = store.executor_tracking_uri(
        "http://localhost:5000", set(), here, driver_address="10.1.0.20",
        answers=answers_on("10.1.0.20"), more_may_come=True)
    assert uri == "http://10.1.0.20:5000" and "executors still to come" in note
    # ... unless the driver's own address is a loopback one: its executors are all here
    assert store.executor_tracking_uri(
        "http://localhost:5000", set(), here, driver_address="127.0.0.1",
        answers=answers_on("10.1.0.20"), more_may_come=True) == ("http://localhost:5000", None)


def test_a_loopback_only_server_with_executors_elsewhere_is_one_clear_warning():
    here = {"127.0.0.1", "localhost", "10.1.0.20"}
    uri, why = store.executor_tracking_uri(
        "http://localhost:5000", {"10.1.0.32", "10.1.0.31"}, here, driver_address="10.1.0.20",
        answers=lambda uri: False)
    assert uri is None
    assert "10.1.0.31, 10.1.0.32" in why and "--host 0.0.0.0" in why and "not recorded" in why
    uri, why = store.executor_tracking_uri(
        "http://127.0.0.1:5000", {"10.1.0.31"}, here, driver_address="127.0.0.1",
        answers=lambda uri: True)
    assert uri is None and "driver's address for them is not known" in why


# ------------------------------------------------------------------ real server, local[2]


def test_run_tree_names_and_values(spark, active, tracked):
    client, experiment_id = tracked
    space = {"penalty": hp.choice("penalty", ["l1", "l2"]), "n": hp.choice("n", np.arange(4, 12)),
             "regParam": hp.loguniform("regParam", -10, 0)}
    started = time.time() * 1000

    def objective(p):
        return {"loss": p["regParam"] + (p["penalty"] == "l2"), "status": STATUS_OK}

    trials, _ = fmin(spark, objective, space, 8, algo=tpe.suggest)
    [parent], children = runs_of(client, experiment_id)

    assert parent.info.status == "FINISHED"
    assert parent.data.params == {"max_evals": "8", "actual_parallelism": "2", "parallelism": "2",
                                  "timeout": "None", "algo": "hyperopt.tpe", "max_queue_len": "1"}
    tags = parent.data.tags
    assert tags["runSource"] == "hyperoptAutoTracking" and len(tags["fmin_uuid"]) == 6
    assert "penalty" in tags["space"] and "regParam" in tags["space"]
    assert parent.data.metrics["total_trials_count"] == 8
    assert parent.data.metrics["successful_trials_count"] == 8
    assert parent.data.metrics["failed_trials_count"] == 0
    assert parent.data.metrics["cancelled_trials_count"] == 0
    history = client.get_metric_history(parent.info.run_id, "best_trial_loss")
    assert [m.value for m in history] == sorted((m.value for m in history), reverse=True)
    assert history[-1].value == pytest.approx(min(trials.losses()))
    assert [m.step for m in history] == sorted(m.step for m in history)

    assert len(children) == 8
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags[PARENT_RUN_TAG] == parent.info.run_id
        assert child.data.tags["fmin_uuid"] == tags["fmin_uuid"]
        assert child.data.tags["runSource"] == "hyperoptAutoTracking"
        assert child.data.tags["trial_status"] == "success"
        params = child.data.params
        assert params["penalty"] in ("l1", "l2")
        assert params["penalty_index"] == str(["l1", "l2"].index(params["penalty"]))
        assert params["n"] in {str(n) for n in range(4, 12)}
        assert child.data.metrics["loss"] == pytest.approx(
            float(params["regParam"]) + (params["penalty"] == "l2"))
        assert started <= child.info.start_time <= child.info.end_time


def logs_its_own_params(params):
    import mlflow

    n_estimators = int(params["n_estimators"])  # hp.quniform gives 30.0; the model wants 30
    mlflow.log_param("n_estimators", n_estimators)
    mlflow.log_param("kind", params["kind"])  # runtime-ml's own value, logged twice
    mlflow.log_param("kind", params["kind"])
    return {"loss": n_estimators / 100, "status": STATUS_OK}


def fits_with_autolog(params):
    import mlflow.sklearn
    from sklearn.ensemble import RandomForestRegressor

    mlflow.sklearn.autolog()
    x = [[i, i % 3] for i in range(30)]
    y = [i * 0.5 for i in range(30)]
    model = RandomForestRegressor(n_estimators=int(params["n_estimators"]), max_depth=2).fit(x, y)
    return {"loss": -model.score(x, y), "status": STATUS_OK}


OWN_PARAMS_SPACE = {"n_estimators": hp.quniform("n_estimators", 2, 8, 1),
                    "kind": hp.choice("kind", ["a", "b"])}


@pytest.mark.parametrize("objective", [logs_its_own_params, fits_with_autolog])
def test_an_objective_logging_its_own_params_leaves_every_trial_nested_and_complete(
        spark, active, tracked, runtime_log, objective):
    client, experiment_id = tracked
    trials, _ = fmin(spark, objective, OWN_PARAMS_SPACE, 6)
    [parent], children = runs_of(client, experiment_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["total_trials_count"] == 6 == len(children)
    assert parent.data.metrics["successful_trials_count"] == 6
    for child in children:
        assert child.info.status == "FINISHED" and child.data.tags["trial_status"] == "success"
        assert "loss" in child.data.metrics and "trial_id" in child.data.tags
        # the objective's own value wins ("30", not runtime-ml's "30.0"); the rest is runtime-ml's
        assert child.data.params["n_estimators"] in {str(n) for n in range(2, 9)}
        assert child.data.params["kind"] in ("a", "b") and "kind_index" in child.data.params
    assert tracking_warnings(runtime_log) == []


def test_a_second_fmin_on_the_same_trials_counts_its_own_trials(spark, active, tracked):
    client, experiment_id = tracked
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    for max_evals in (4, 6):  # hyperopt's max_evals counts every trial: the second runs 2 more
        hyperopt.fmin(lambda x: x ** 2, hp.uniform("x", -1, 1), algo=rand.suggest,
                      max_evals=max_evals, trials=trials, show_progressbar=False)
    parents, children = runs_of(client, experiment_id)
    counted = sorted((p.data.metrics["total_trials_count"],
                      sum(c.data.tags[PARENT_RUN_TAG] == p.info.run_id
                          for c in children)) for p in parents)
    assert counted == [(2, 2), (4, 4)]


def test_the_printed_link_opens_the_runs_view_of_mlflow_3s_ui():
    link = records.runs_view_link("http://user:pw@host:5000/", "7", genai_ui=True)
    assert link == "http://host:5000/#/experiments/7?workflowType=machine_learning"
    assert records.runs_view_link("http://host:5000", "7", genai_ui=False) == \
        "http://host:5000/#/experiments/7"
    assert records.runs_view_link("sqlite:///mlflow.db", "7", genai_ui=True) is None


@pytest.mark.parametrize("users_kind", [None, "genai_development"])
def test_the_experiment_is_labelled_machine_learning_unless_the_user_chose_a_kind(
        spark, active, tracked, users_kind):
    from runtime_ml.compat import versions

    client, experiment_id = tracked
    if users_kind is not None:
        client.set_experiment_tag(experiment_id, records.EXPERIMENT_KIND_TAG, users_kind)
    fmin(spark, lambda x: x ** 2, hp.uniform("x", -1, 1), 2)
    kind = client.get_experiment(experiment_id).tags.get(records.EXPERIMENT_KIND_TAG)
    if users_kind is not None:
        assert kind == users_kind
    elif versions.mlflow_ui_has_genai_view(mlflow.__version__):
        assert kind == "custom_model_development"
    else:  # MLflow 2 has one view: nothing is written
        assert kind is None


def prints_and_logs(x):
    import sys

    print(f"fitting with x={x:.3f}")
    print("a warning on stderr", file=sys.stderr)
    logging.getLogger("users.model").warning("converged in 12 steps")
    return x


def test_what_a_trial_prints_is_an_artifact_of_its_run_unless_switched_off(spark, active,
                                                                           tracked):
    from runtime_ml import conf

    client, experiment_id = tracked
    fmin(spark, prints_and_logs, hp.uniform("x", 0, 1), 2)
    spark.conf.set(conf.TRIAL_OUTPUT.name, "false")
    try:
        fmin(spark, prints_and_logs, hp.uniform("x", 0, 1), 2)
    finally:
        spark.conf.unset(conf.TRIAL_OUTPUT.name)
    parents, children = runs_of(client, experiment_id)
    assert len(parents) == 2 and len(children) == 4
    first = min(parents, key=lambda p: p.info.start_time).info.run_id
    for child in children:
        artifacts = [a.path for a in client.list_artifacts(child.info.run_id)]
        if child.data.tags[PARENT_RUN_TAG] != first:
            assert artifacts == []  # switched off
            continue
        assert artifacts == [records.PRINTED_ARTIFACT]
        text = mlflow.artifacts.load_text(
            f"runs:/{child.info.run_id}/{records.PRINTED_ARTIFACT}")
        assert f"fitting with x={float(child.data.params['x']):.3f}\n" in text
        assert "a warning on stderr\n" in text
        assert "WARNING users.model: converged in 12 steps\n" in text


def marks_its_start_then_logs(directory, x):
    import os

    import mlflow

    open(os.path.join(directory, f"started-{x}"), "w").close()
    mlflow.log_metric("seen_x", x)  # waits for the trial's run when it does not exist yet
    return x


def test_a_trial_starts_before_its_run_and_the_parent_run_exist_and_its_logging_lands_in_its_run(
        spark, active, tracked, tmp_path, monkeypatch):
    client, experiment_id = tracked
    create_run = mlflow.MlflowClient.create_run
    started_first = []

    def after_the_trial_started(self, experiment_id, start_time=None, tags=None, run_name=None):
        # the parent run: held until the first trial ran; trial N's run: until N+1 trials ran
        tid = int(tags["trial_id"]) if tags and PARENT_RUN_TAG in tags else 0
        deadline = time.monotonic() + 30
        while len(list(tmp_path.iterdir())) <= tid and time.monotonic() < deadline:
            time.sleep(0.01)
        started_first.append((run_name, len(list(tmp_path.iterdir())) > tid))
        return create_run(self, experiment_id, start_time, tags, run_name)

    monkeypatch.setattr(mlflow.MlflowClient, "create_run", after_the_trial_started)
    fmin(spark, functools.partial(marks_its_start_then_logs, str(tmp_path)),
         hp.uniform("x", 0, 1), 3, parallelism=1)
    assert [waited for _, waited in started_first] == [True] * 4  # no trial waited for a run
    assert started_first[0][0].startswith("hyperopt-fmin-")
    [parent], children = runs_of(client, experiment_id)
    assert len(children) == 3
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.metrics["seen_x"] == pytest.approx(float(child.data.params["x"]))
        assert child.info.start_time <= child.info.end_time


def test_trial_runs_end_without_printing_a_link_each(spark, active, tracked, capsys):
    client, experiment_id = tracked
    assert mlflow_private.quiet_run_update(client) is not None, "MLflow moved the store's update_run_info"
    fmin(spark, lambda x: x ** 2, hp.uniform("x", -1, 1), 6)
    [parent], children = runs_of(client, experiment_id)
    assert [c.info.status for c in children] == ["FINISHED"] * 6
    assert all(c.info.end_time >= c.info.start_time for c in children)
    printed = capsys.readouterr().out
    assert "View run trial-" not in printed


def test_active_run_is_the_parent_and_a_second_fmin_gets_suffixes(spark, active, tracked):
    client, experiment_id = tracked
    with mlflow.start_run() as outer:
        fmin(spark, lambda x: x ** 2, hp.uniform("x", -1, 1), 3)
        assert mlflow.active_run().info.run_id == outer.info.run_id
        fmin(spark, lambda x: x ** 2, hp.uniform("x", -1, 1), 2)
        assert client.get_run(outer.info.run_id).info.status == "RUNNING"  # left open
    parents, children = runs_of(client, experiment_id)
    assert [p.info.run_id for p in parents] == [outer.info.run_id]
    data = client.get_run(outer.info.run_id).data
    uuids = {k: v for k, v in data.tags.items() if k.startswith("fmin_uuid")}
    assert len(uuids) == 2
    second = next(v for k, v in uuids.items() if k != "fmin_uuid")
    assert data.params["max_evals"] == "3" and data.params[f"max_evals_{second}"] == "2"
    assert f"actual_parallelism_{second}" in data.params
    assert {c.data.tags["fmin_uuid"] for c in children} == set(uuids.values())
    assert len(children) == 5


def test_failed_trials_are_failed_runs_with_the_error(spark, active, tracked):
    client, experiment_id = tracked

    def objective(x):
        if x > 0:
            raise ValueError(f"x too big: {x:.3f}")
        if x < -0.5:
            return {"status": "fail"}
        return x ** 2

    trials, _ = fmin(spark, objective, hp.uniform("x", -1, 1), 10)
    [parent], children = runs_of(client, experiment_id)
    raised = [c for c in children if c.data.tags.get("error_type") == "ValueError"]
    assert raised and all(c.info.status == "FAILED" for c in raised)
    assert all(c.data.tags["error_message"].startswith("ValueError: x too big") for c in raised)
    assert all(c.data.tags["trial_status"] == "failure" and "loss" not in c.data.metrics
               for c in raised)
    statuses = {c.data.tags["trial_status"] for c in children}
    assert statuses <= {"success", "failure"}
    assert trials.count_failed_trials() == len(raised)  # hyperopt counts STATUS_FAIL as a success
    failed = [c for c in children if c.info.status == "FAILED"]
    assert parent.data.metrics["failed_trials_count"] == len(failed) > len(raised)


@pytest.mark.parametrize("off", [False, "false", "FALSE"])
def test_flag_off_at_run_time_creates_no_runs_and_on_again_does(spark, active, tracked, off,
                                                               runtime_log):
    client, experiment_id = tracked
    spark.conf.set(KEY, off)
    try:
        fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 2)
        assert runs_of(client, experiment_id) == ([], [])
    finally:
        spark.conf.set(KEY, True)
    fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 2)
    parents, children = runs_of(client, experiment_id)
    assert len(parents) == 1 and len(children) == 2


def test_nothing_of_a_trial_is_left_on_a_reused_worker(spark, active, tracked):
    def logs_and_reports(x):
        import mlflow as worker_mlflow

        worker_mlflow.log_param("seen", 1)
        return x

    fmin(spark, logs_and_reports, hp.uniform("x", 0, 1), 4, parallelism=1)
    spark.conf.set(KEY, "false")
    try:
        def reports(x):
            import sys

            active_run = None
            if "mlflow" in sys.modules:
                active_run = sys.modules["mlflow"].active_run()
            return {"loss": x, "status": STATUS_OK, "run_env": os.environ.get("MLFLOW_RUN_ID"),
                    "active": None if active_run is None else active_run.info.run_id}

        trials, _ = fmin(spark, reports, hp.uniform("x", 0, 1), 4, parallelism=1)
    finally:
        spark.conf.unset(KEY)
    for result in trials.results:
        assert result["run_env"] is None and result["active"] is None


def test_a_token_the_objective_prints_or_raises_reaches_no_run_and_no_log_line(
        spark, active, tracked, monkeypatch, caplog):
    """The credentials reach the trials; a user debugging with them (printing the token, raising
    with it, or with it in the space) finds "***" wherever runtime-ml wrote it: the trial's
    trial_output.txt, its error_message tag, its params, the record tags a resume reads, the
    parent's space tag, runtime-ml's warning and hyperopt-spark's line for the failed trial."""
    client, experiment_id = tracked
    secret = "s3cr3t-token-value"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", secret)
    caplog.set_level(logging.DEBUG, logger="hyperopt-spark")
    caplog.set_level(logging.INFO, logger="runtime_ml")

    def debugs_with_the_token(args):
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        print(f"logging in with {token}")
        if args["how"] == "raise":
            raise ValueError(f"could not log in with {token}")
        return {"loss": args["x"], "status": STATUS_OK, "token_seen": token == secret}

    space = {"x": hp.uniform("x", 0, 1), "how": hp.choice("how", ["raise", f"ok-{secret}"])}
    trials, _ = fmin(spark, debugs_with_the_token, space, 8)
    assert any(r.get("token_seen") for r in trials.results)  # the trials had the token
    parents, children = runs_of(client, experiment_id)
    assert len(parents) == 1 and len(children) == 8
    failed = [run for run in children if run.data.tags["trial_status"] == "failure"]
    succeeded = [run for run in children if run.data.tags["trial_status"] == "success"]
    assert failed and succeeded  # both ways were drawn (seed 0)

    for run in children:  # trial_output.txt
        printed = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/trial_output.txt")
        assert printed.strip() == "logging in with ***", printed
    for run in failed:  # error_message, and the record a resume reads back
        assert run.data.tags["error_message"] == "ValueError: could not log in with ***"
        assert "could not log in with ***" in run.data.tags["runtime_ml.trial"]
    for run in succeeded:  # params
        assert run.data.params["how"] == "ok-***"
    assert "ok-***" in parents[0].data.tags["space"]  # the parent's tags
    for run in parents + children:
        written = [*run.data.params.items(), *run.data.tags.items()]
        assert not [item for item in written if secret in "".join(item)]
    lines = [(r.name, r.getMessage()) for r in caplog.records
             if r.name in ("runtime_ml", "hyperopt-spark")]
    assert any(name == "hyperopt-spark" and "could not log in with ***" in line
               for name, line in lines)
    assert any(name == "runtime_ml" and "logging in with ***" in line for name, line in lines)
    assert not [line for _, line in lines if secret in line]


def test_local_sqlite_store_is_tracked_too(spark, active, tmp_path):
    uri = f"sqlite:///{tmp_path / 'local.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        def logs(x):
            import mlflow as worker_mlflow

            worker_mlflow.log_metric("from_worker", x)
            return x

        fmin(spark, logs, hp.uniform("x", 0, 1), 3)
    finally:
        mlflow.set_tracking_uri(previous)
    parents, children = runs_of(mlflow.MlflowClient(uri), "0")
    assert len(parents) == 1 and len(children) == 3
    assert all("from_worker" in c.data.metrics for c in children)


# ------------------------------------------------------------------ the server fails


def test_server_down_from_the_start_same_result_one_warning(spark, active, runtime_log):
    previous = mlflow.get_tracking_uri()
    spark.conf.set(KEY, "false")
    try:
        _, untracked = fmin(spark, lambda x: (x - 0.3) ** 2, hp.uniform("x", 0, 1), 6, seed=5)
    finally:
        spark.conf.unset(KEY)
    mlflow.set_tracking_uri("http://127.0.0.1:9")  # discard port: nothing listens
    try:
        trials, tracked_best = fmin(spark, lambda x: (x - 0.3) ** 2, hp.uniform("x", 0, 1), 6,
                                    seed=5)
    finally:
        mlflow.set_tracking_uri(previous)
    assert tracked_best == untracked and len(trials.trials) == 6
    warnings = tracking_warnings(runtime_log)
    assert len(warnings) == 1 and "http://127.0.0.1:9" in warnings[0]


def test_a_server_that_answers_health_with_a_client_error_is_there_and_one_with_a_server_error_is_not():
    """One probe for the driver and the executors: a 401 or 404 (an auth layer or a proxy in
    front of the server) is an answer; a 503 is not."""
    import http.server

    class Replies(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(int(self.path.strip("/").split("/")[0]))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Replies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert server_health.unreachable(f"{base}/200") is None
        assert server_health.unreachable(f"{base}/401") is None
        assert server_health.unreachable(f"{base}/404") is None
        assert server_health.unreachable(f"{base}/503") == f"HTTP 503 from {base}/503"
        assert server_health.unreachable("sqlite:///local.db") is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class HeldHealth:
    """A "server" whose /health is held until `marker` exists (or 30 s), then dropped unanswered;
    `answered_after_marker` says whether the marker came while the request was held."""

    def __init__(self, marker):
        self.marker = marker
        self.answered_after_marker = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.uri = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        with self._listener, self._listener.accept()[0] as connection:
            connection.recv(65536)
            deadline = time.monotonic() + 30
            while not self.marker.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            self.answered_after_marker = self.marker.exists()

    def join(self):
        self._thread.join(40)


def test_when_the_fmin_finishes_the_ends_of_runs_whose_results_are_on_their_way_go_out_at_once(
        spark, active, tracked, monkeypatch):
    """Every trial's result write is held until some run's end has been sent: before the fmin
    finishes a run ends only after its result, so the writes wait until finish() sends the ends
    of the runs whose results are on their way (it used to wait for each result first: a round
    trip more before fmin returns). The runs are complete all the same."""
    from runtime_ml.tracking import tracker

    client, experiment_id = tracked
    released, order = threading.Event(), []
    real_log_batch, real_end = mlflow.MlflowClient.log_batch, tracker.end_run_quietly

    def held_result(self, run_id, metrics=(), params=(), tags=(), **kwargs):
        if any(tag.key == "trial_status" for tag in tags):
            released.wait(20)
            real_log_batch(self, run_id, metrics, params, tags, **kwargs)
            order.append(("result written", run_id))
            return None
        return real_log_batch(self, run_id, metrics, params, tags, **kwargs)

    def ending(client, run_id, *args):
        order.append(("end sent", run_id))
        released.set()
        return real_end(client, run_id, *args)

    monkeypatch.setattr(mlflow.MlflowClient, "log_batch", held_result)
    monkeypatch.setattr(tracker, "end_run_quietly", ending)
    started = time.monotonic()
    fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 2)
    assert time.monotonic() - started < 20  # the hold was let go by an end, not by its timeout
    [parent], children = runs_of(client, experiment_id)
    assert len(children) == 2
    for child in children:
        run_id = child.info.run_id
        assert order.index(("end sent", run_id)) < order.index(("result written", run_id))
        assert child.info.status == "FINISHED" and "loss" in child.data.metrics


def test_the_tracker_keeps_as_many_threads_for_a_server_as_mlflow_keeps_connections():
    from runtime_ml.tracking.tracker import server_threads

    assert server_threads({}) == 10  # MLflow's default pool
    assert server_threads({"MLFLOW_HTTP_POOL_MAXSIZE": "32"}) == 32
    assert server_threads({"MLFLOW_HTTP_POOL_MAXSIZE": "many"}) == 10


def test_the_first_trials_launch_while_the_servers_health_is_asked_and_no_answer_is_one_warning(
        spark, active, runtime_log, monkeypatch, tmp_path):
    """The /health request is held until a trial has started: the fmin used to wait for the answer
    (a round trip, or HEALTH_TIMEOUT for a server that is cut off) before its first launch."""
    monkeypatch.setattr(server_health, "HEALTH_TIMEOUT", 35.0)
    marker = tmp_path / "a trial started"
    server = HeldHealth(marker)
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.uri)

    def objective(x):
        marker.touch()
        return (x - 0.3) ** 2

    try:
        trials, _ = fmin(spark, objective, hp.uniform("x", 0, 1), 4)
    finally:
        mlflow.set_tracking_uri(previous)
        server.join()
    assert server.answered_after_marker is True
    assert trials.count_successful_trials() == 4
    [warning] = tracking_warnings(runtime_log)
    assert server.uri in warning and "runs untracked" in warning


# ------------------------------------------------------------------ MLflow imported in the background

PRELOAD_REPORT = """
import json, os, sys, time
import runtime_ml
runtime_ml.activate()
import hyperopt
from runtime_ml.tracking import preload
started = preload._thread is not None
preload.wait(120)
report = {"started": started, "mlflow": "mlflow" in sys.modules}
from runtime_ml.compat.mlflow_private import DATABASE_STORE_MODULE
if DATABASE_STORE_MODULE in sys.modules and "sqlalchemy.dialects.sqlite" in sys.modules:
    report["database store"] = "imported"
print(json.dumps(report))
"""


def test_a_driver_that_imports_hyperopt_has_mlflow_and_its_database_store_imported_in_the_background(
        tmp_path):
    store = tmp_path / "mlflow.db"
    done = run_python(PRELOAD_REPORT, env={"MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "started": True, "mlflow": True, "database store": "imported"}
    assert not store.exists(), "only imported: no database is opened before an fmin tracks"


def test_a_pyspark_worker_or_a_user_who_switched_tracking_off_never_imports_mlflow():
    done = run_python(PRELOAD_REPORT, env={"PYTHON_WORKER_FACTORY_SECRET": "x"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"started": False, "mlflow": False}
    switched_off = ("from pyspark import SparkConf, SparkContext\n"
                    f"sc = SparkContext(master='local[1]', conf=SparkConf().set({KEY!r}, 'false'))\n")
    off = run_python(switched_off + PRELOAD_REPORT + "sc.stop()\n")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout.splitlines()[-1]) == {"started": False, "mlflow": False}


def test_an_admin_who_switched_tracking_off_in_spark_defaults_spares_the_driver_mlflows_import(
        tmp_path):
    """hyperopt imported before Spark starts: the conf file Spark will read says no tracking."""
    (tmp_path / "spark-defaults.conf").write_text(f"# the admins' switch\n{KEY}  false\n")
    off = run_python(PRELOAD_REPORT, env={"SPARK_CONF_DIR": str(tmp_path)})
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout.splitlines()[-1]) == {"started": False, "mlflow": False}
    (tmp_path / "spark-defaults.conf").write_text(f"{KEY}=true\n")
    on = run_python(PRELOAD_REPORT, env={"SPARK_CONF_DIR": str(tmp_path)})
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout.splitlines()[-1])["started"] is True


def held_background_import(*names, seconds=2, before_hyperopt="pass"):
    """The start of a script that imports hyperopt after activating runtime-ml, with the background
    MLflow import held for `seconds` as it runs each module of `names` (`preload` is imported).
    Held in the module's execution, as a slow import is: a finder that slept would hold Python's
    global import lock, and every other thread's imports with it. `before_hyperopt`: one line
    run before hyperopt is imported (e.g. starting Spark, whose JVM start would wait for the
    import)."""
    return f"""
        import importlib.machinery, os, sys, threading, time

        class HeldLoader:
            def __init__(self, loader):
                self.loader = loader

            def __getattr__(self, name):
                return getattr(self.loader, name)

            def exec_module(self, module):
                time.sleep({seconds})
                self.loader.exec_module(module)

        class HeldImport:
            def find_spec(self, name, path=None, target=None):
                if name in {names!r} and \\
                        threading.current_thread().name == "runtime-ml-mlflow-import":
                    spec = importlib.machinery.PathFinder.find_spec(name, path)
                    spec.loader = HeldLoader(spec.loader)
                    return spec
                return None

        sys.meta_path.insert(0, HeldImport())
        {before_hyperopt}
        import runtime_ml
        runtime_ml.activate()
        import hyperopt
        from runtime_ml.tracking import preload
        """


def test_a_fork_during_the_background_import_waits_for_it_and_the_child_can_use_mlflow():
    # Held also where MLflow first imports concurrent.futures.thread, whose fork handlers (lock
    # acquired before a fork, released after) would be registered while the fork waits: the
    # release without the acquire printed "Exception ignored ... release unlocked lock" when
    # SparkSession.builder started the JVM.
    done = run_python(held_background_import("mlflow.tracking", "concurrent.futures.thread") + """
        assert preload._thread.is_alive(), "the import is over before the fork"
        pid = os.fork()
        if pid == 0:
            import signal
            signal.alarm(30)  # a child that inherited a half-import hangs on it: end it
            half = getattr(sys.modules["mlflow"].__spec__, "_initializing", False)
            import mlflow
            os._exit(4 if half else 0 if callable(getattr(mlflow, "start_run", None)) else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0"
    assert "Exception ignored" not in done.stderr, done.stderr


def test_a_users_import_of_an_mlflow_module_during_the_background_import_waits_for_it():
    """`from mlflow.tracking import ...` while the background import is inside MLflow (held there
    for 2 s): Python itself waits only for `import mlflow`; this import used to fail with
    "partially initialized module 'mlflow.tracking'"."""
    done = run_python(held_background_import("mlflow.tracking") + """
        import builtins
        assert preload._thread.is_alive(), "the import is over before the user's"
        from mlflow.tracking import MlflowClient, fluent
        print(callable(fluent.start_run), builtins.__import__ is preload._plain_import)
        """, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "True True"  # and the import statement is plain again


SQLITE = {"MLFLOW_TRACKING_URI": "sqlite:////tmp/m.db"}


@pytest.mark.parametrize("facts, where, store_first, while_importing", [
    # a fresh search in the default experiment, or one the application chose: launches at once
    ({}, "fresh", False, None),
    ({"chosen_experiment": True, "environ": {"MLFLOW_EXPERIMENT_NAME": "x"}}, "fresh", False, None),
    # MLflow looks a named experiment up in the store, and checks a numbered one there
    ({"environ": {"MLFLOW_EXPERIMENT_NAME": "x"}}, "fresh", True, None),
    ({"environ": {"MLFLOW_EXPERIMENT_ID": "7"}}, "fresh", True, None),
    # the active run's params are read first
    ({"active_run": True}, "active", True, None),
    # a search to continue or resume is read and loaded before the first proposal
    ({"continues_a_search": True}, "continue", True, None),
    ({"resume_on": True}, "resume", True, None),
    ({"resume_on": True, "active_run": True}, "resume", True, None),
    # resume on, but the SparkTrials holds trials: continue with those, as hyperopt does
    ({"resume_on": True, "held_trials": 3}, "fresh", False, None),
    ({"resume_on": True, "held_trials": 3, "active_run": True}, "active", True, None),
    # MLflow still importing: the environment names a server or a database that exists
    ({"mlflow_importing": True, "environ": SQLITE, "uri_file_exists": True}, "fresh", False,
     ("sqlite:////tmp/m.db", "0")),
    ({"mlflow_importing": True, "environ": dict(SQLITE, MLFLOW_EXPERIMENT_ID="7"),
      "uri_file_exists": True}, "fresh", False, ("sqlite:////tmp/m.db", "7")),
    ({"mlflow_importing": True, "environ": {"MLFLOW_TRACKING_URI": "http://h:5000"}}, "fresh",
     False, ("http://h:5000", "0")),
    ({"mlflow_importing": True, "environ": {"MLFLOW_TRACKING_URI": "postgresql://db/mlflow"}},
     "fresh", False, ("postgresql://db/mlflow", "0")),
    # ... not a sqlite file without tables yet, a name or run to look up, or a search to load
    ({"mlflow_importing": True, "environ": SQLITE}, "fresh", False, None),
    ({"mlflow_importing": True, "environ": dict(SQLITE, MLFLOW_EXPERIMENT_NAME="x"),
      "uri_file_exists": True}, "fresh", True, None),
    ({"mlflow_importing": True, "environ": dict(SQLITE, MLFLOW_RUN_ID="r"),
      "uri_file_exists": True}, "fresh", False, None),
    ({"mlflow_importing": True, "environ": SQLITE, "uri_file_exists": True, "resume_on": True},
     "resume", True, None),
    # ... nor what only MLflow resolves
    ({"mlflow_importing": True, "environ": {"MLFLOW_TRACKING_URI": "databricks"}}, "fresh", False,
     None),
    ({"mlflow_importing": True, "environ": {"MLFLOW_TRACKING_URI": "file:///tmp/mlruns"}},
     "fresh", False, None),
    ({"mlflow_importing": True}, "fresh", False, None),
])
def test_one_decision_says_where_the_runs_go_and_what_the_first_trials_wait_for(
        facts, where, store_first, while_importing):
    defaults = dict(continues_a_search=False, resume_on=False, held_trials=0,
                    mlflow_importing=False, active_run=False, chosen_experiment=False, environ={},
                    uri_file_exists=False)
    plan = search.decide(search.SearchFacts(**dict(defaults, **facts)))
    assert (plan.where, plan.store_first, plan.while_importing) == (
        where, store_first, while_importing)
    assert plan.fallback == ("active" if facts.get("active_run") else "fresh")
    assert (plan.note is not None) == bool(facts.get("held_trials"))


@pytest.mark.parametrize("held", ["mlflow.tracking", "mlflow.tracking._tracking_service.utils"])
def test_the_first_trials_launch_while_mlflow_is_imported_and_still_log_into_their_runs(tmp_path,
                                                                                      held):
    """The background import held 4 s inside MLflow, an fmin right after `import hyperopt`: its
    first trial launches before the import ends (the fmin used to wait for it), and every trial's
    run is made after it, nested, with its own start, result and the objective's own metric. Held
    in the module that keeps MLflow's tracking URI too: a module half imported is no private name
    that moved (strict mode raised there once, failing the fmin)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()  # a store that exists
    spark = ('from pyspark.sql import SparkSession; spark = SparkSession.builder.master("local[2]")'
             '.config("spark.ui.enabled", "false").getOrCreate()')
    done = run_python(held_background_import(held, seconds=4, before_hyperopt=spark) + """
        import datetime, json
        from hyperopt import SparkTrials, fmin, hp, tpe

        assert preload.running(), "the import is over before the fmin"
        import_ended = []
        threading.Thread(target=lambda: (preload.wait(), import_ended.append(time.time())),
                         daemon=True).start()

        def objective(x):
            import mlflow
            mlflow.log_metric("seen", x)
            return x * x

        trials = SparkTrials(parallelism=2)
        fmin(objective, hp.uniform("x", -1, 1), algo=tpe.suggest, max_evals=4, trials=trials,
             show_progressbar=False)
        utc = datetime.timezone.utc
        first_launch = min(t["book_time"] for t in trials.trials).replace(tzinfo=utc).timestamp()
        from mlflow import MlflowClient

        client = MlflowClient()
        runs = client.search_runs(["0"])
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        print(json.dumps({
            "launched before the import ended": first_launch < import_ended[0],
            "parents": [r.info.status for r in parents],
            "nested": sorted({r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
                              for r in children}),
            "children": sorted((r.info.status, r.data.metrics.get("loss") == r.data.metrics["seen"] ** 2)
                               for r in children),
            "a run starts when its trial did": min(r.info.start_time for r in children) / 1000
            < import_ended[0],
        }))
        spark.stop()
        """, env={"MLFLOW_TRACKING_URI": uri}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "launched before the import ended": True, "parents": ["FINISHED"], "nested": [True],
        "children": [["FINISHED", True]] * 4, "a run starts when its trial did": True}


# ------------------------------------------------------------------ clusters, in subprocesses


def scenario_runs(mlflow_server, tmp_path, settings=(), env=None, master="local-cluster[2,1,1024]"):
    import json
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    experiment = f"scenario-{uuid.uuid4().hex[:8]}"
    full_env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1",
                    MLFLOW_TRACKING_URI=mlflow_server.uri, MLFLOW_EXPERIMENT_NAME=experiment,
                    SCENARIO_WORKER_LOGGING="1")
    full_env.update(env or {})
    full_env.pop("MLFLOW_EXPERIMENT_ID", None)
    script = str(Path(__file__).parent / "cluster_scenario.py")
    done = subprocess.run([sys.executable, script, master, "2", "6", "0.1", *settings],
                          capture_output=True, text=True, env=full_env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    client = mlflow.MlflowClient(mlflow_server.uri)
    found = client.get_experiment_by_name(experiment)
    runs = runs_of(client, found.experiment_id) if found else ([], [])
    return result, runs, client


def test_worker_logging_lands_in_the_trial_run_on_separate_executor_jvms(mlflow_server, tmp_path):
    result, (parents, children), client = scenario_runs(mlflow_server, tmp_path)
    assert result["trials"] == 6 and len(parents) == 1 and len(children) == 6
    assert all(c.info.status == "FINISHED" for c in children)
    driver_pid = os.getpid()
    for child in children:
        params = child.data.params
        assert "worker_pid" in params and int(params["worker_pid"]) != driver_pid
        if float(params["x"]) < 0:
            assert child.data.tags["worker_tag"] == "yes"
            assert child.data.metrics["worker_metric"] == pytest.approx(float(params["x"]))
            # the objective's artifact; next to it at most what the trial printed (on the oldest
            # pin, the worker's first `import mlflow` warns about pkg_resources during the trial)
            artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
            assert "note.txt" in artifacts and artifacts <= {"note.txt", "trial_output.txt"}
    # one run per trial: nothing started its own run next to the trial's
    assert len(parents) + len(children) == 7


def test_flag_off_in_spark_defaults_conf_creates_no_runs(mlflow_server, tmp_path):
    (tmp_path / "spark-defaults.conf").write_text(f"{KEY} false\n")
    result, runs, _ = scenario_runs(mlflow_server, tmp_path, master="local[2]",
                                    env={"SPARK_CONF_DIR": str(tmp_path),
                                         "SCENARIO_WORKER_LOGGING": "0"})
    assert result["trials"] == 6 and runs == ([], [])
    assert any("tracking of this fmin is off" in text for _, text in result["log"])


def test_a_raising_early_stop_fn_leaves_no_trial_run_running(spark, active, tracked):
    client, experiment_id = tracked

    def broken_stop(trials, *args):
        raise ValueError("user bug in early_stop_fn")

    fmin(spark, lambda x: x, hp.uniform("x", 0, 1), 4, early_stop_fn=broken_stop)
    [parent], children = runs_of(client, experiment_id)
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}


def test_the_start_run_guard_is_idempotent_reversible_and_passes_through_outside_trials(
        tmp_path, monkeypatch):
    import mlflow
    import mlflow.tracking.fluent as fluent

    from runtime_ml.worker import trial_run

    original = mlflow.start_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'guard.db'}")
    trial_run.guard_when_loaded()
    trial_run.guard_when_loaded()
    try:
        assert mlflow.start_run is fluent.start_run
        assert original_of(mlflow.start_run) is original
        with mlflow.start_run() as run:  # no trial: MLflow's own behaviour
            assert run.info.run_id
    finally:
        trial_run.unguard()
    assert mlflow.start_run is original is fluent.start_run
