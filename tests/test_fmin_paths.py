"""A SparkTrials fmin on local[2] through every call path, and the safe-patch contract."""

import sys

import hyperopt
import hyperopt.spark
import pytest
from conftest import runs_of
from hyperopt import Trials, hp, rand, tpe

from runtime_ml import conf
from runtime_ml.driver import fmin_call, launcher

FMIN_MODULE = sys.modules["hyperopt.fmin"]
SPACE = hp.uniform("x", -2, 2)
ANNOUNCEMENT = "SparkTrials fmin:"


def quadratic(x):
    return (x - 1) ** 2


def announcements(log):
    return [r for r in log.records if r.getMessage().startswith(ANNOUNCEMENT)]


@pytest.fixture
def hyperopt_runs(monkeypatch):
    """Counts how often hyperopt's own optimization loop (FMinIter.exhaust) runs."""
    calls = []
    real = hyperopt.FMinIter.exhaust

    def counting_exhaust(self):
        calls.append(type(self).__name__)
        return real(self)

    monkeypatch.setattr(hyperopt.FMinIter, "exhaust", counting_exhaust)
    return calls


CALL_PATHS = {
    "hyperopt.fmin": lambda trials, **kw: hyperopt.fmin(quadratic, SPACE, trials=trials, **kw),
    "from hyperopt.fmin import fmin": lambda trials, **kw: FMIN_MODULE.fmin(
        quadratic, SPACE, trials=trials, **kw
    ),
    "trials.fmin": lambda trials, **kw: trials.fmin(
        quadratic, SPACE, kw["algo"], kw["max_evals"], None, None, 1, None, False, None, False,
        True, False, None,
    ),
}


@pytest.mark.parametrize("path", sorted(CALL_PATHS))
def test_every_call_path_goes_through_runtime_ml_exactly_once(
    spark, active, runtime_log, hyperopt_runs, path
):
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    best = CALL_PATHS[path](trials, algo=rand.suggest, max_evals=3)
    assert set(best) == {"x"}
    assert len(announcements(runtime_log)) == 1
    assert len(hyperopt_runs) == 1
    assert len(trials.trials) == 3


def test_from_hyperopt_import_fmin_taken_before_activation_is_routed(
    spark, runtime_log, hyperopt_runs
):
    import runtime_ml

    runtime_ml.deactivate()
    from hyperopt import fmin  # the user's binding, taken while unpatched

    runtime_ml.activate()
    fmin(quadratic, SPACE, algo=rand.suggest, max_evals=2,
         trials=hyperopt.SparkTrials(parallelism=2, spark_session=spark))
    assert len(announcements(runtime_log)) == 1
    assert len(hyperopt_runs) == 1


def test_plain_trials_never_reach_runtime_ml(active, runtime_log):
    trials = Trials()
    hyperopt.fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=5, trials=trials,
                  show_progressbar=False)
    assert len(trials.trials) == 5
    assert announcements(runtime_log) == []


class UserError(Exception):
    pass


def test_user_exceptions_propagate_unchanged(spark, active, hyperopt_runs):
    raised = []

    def broken_algo(*args, **kwargs):
        raised.append(UserError("from the user's algo"))
        raise raised[-1]

    with pytest.raises(UserError) as caught:
        hyperopt.fmin(quadratic, SPACE, algo=broken_algo, max_evals=2,
                      trials=hyperopt.SparkTrials(parallelism=1, spark_session=spark))
    assert caught.value is raised[0]
    assert len(hyperopt_runs) == 1


def test_user_call_errors_are_hyperopts_own(spark, active):
    trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark)
    with pytest.raises(TypeError) as ours:
        trials.fmin(quadratic, SPACE)
    with pytest.raises(TypeError) as stock:
        hyperopt.spark.SparkTrials.fmin.__wrapped__(trials, quadratic, SPACE)
    assert str(ours.value) == str(stock.value)


# Where runtime-ml's own code fails, and which fmin loop then ran: before the first trial launches,
# hyperopt's own (stock SparkTrials); after, runtime-ml's, whose results stand.
INJECTED = {
    "preparing the call": (lambda: fmin_call.FminCall, "prepare", "FMinIter"),
    "reading the cluster": (lambda: fmin_call, "read_cluster_facts", "FMinIter"),
    "shipping the objective": (lambda: launcher.ClassicLauncher, "ship", "FMinIter"),
    "finishing the call": (lambda: fmin_call.FminCall, "finish", "SlotAwareFMinIter"),
}


@pytest.mark.parametrize("where", INJECTED)
def test_internal_errors_fail_open_and_hyperopt_runs_once(
    spark, active, runtime_log, hyperopt_runs, monkeypatch, where
):
    def explode(*args, **kwargs):
        raise RuntimeError("runtime-ml bug")

    owner, name, loop = INJECTED[where]
    monkeypatch.setattr(owner(), name, explode)
    monkeypatch.delenv(conf.STRICT.name, raising=False)
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    best = hyperopt.fmin(quadratic, SPACE, algo=rand.suggest, max_evals=3, trials=trials)
    assert set(best) == {"x"} and len(trials.trials) == 3
    assert hyperopt_runs == [loop]
    warnings = [r for r in runtime_log.records if "internal error" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info[0] is RuntimeError
    assert not {"insert_trial_docs", "new_trial_ids"} & set(vars(trials))  # no override left


def test_a_tracked_fmin_that_falls_back_to_stock_after_tracking_started_records_every_trial(
        spark, active, tracked, monkeypatch):
    """Shipping the objective fails after the parent run was asked for: stock hyperopt's dispatch
    runs the trials, and each gets its child run after the fact (its own times, params, loss), so
    the parent's counts match its children."""
    client, experiment_id = tracked

    def explode(*args, **kwargs):
        raise RuntimeError("runtime-ml bug")

    monkeypatch.setattr(launcher.ClassicLauncher, "ship", explode)
    monkeypatch.delenv(conf.STRICT.name, raising=False)
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    hyperopt.fmin(quadratic, SPACE, algo=rand.suggest, max_evals=3, trials=trials)
    [parent], children = runs_of(client, experiment_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["total_trials_count"] == 3
    assert sorted(c.data.tags["trial_id"] for c in children) == ["0", "1", "2"]
    by_tid = {t["tid"]: t for t in trials.trials}
    for child in children:
        trial = by_tid[int(child.data.tags["trial_id"])]
        assert child.info.status == "FINISHED"
        assert child.data.metrics["loss"] == trial["result"]["loss"]
        assert float(child.data.params["x"]) == trial["misc"]["vals"]["x"][0]
        assert child.info.start_time <= child.info.end_time


def test_strict_mode_raises_internal_errors(spark, active, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("runtime-ml bug")

    monkeypatch.setattr(fmin_call.FminCall, "prepare", explode)
    monkeypatch.setenv(conf.STRICT.name, "1")
    with pytest.raises(RuntimeError, match="runtime-ml bug"):
        hyperopt.fmin(quadratic, SPACE, algo=rand.suggest, max_evals=2,
                      trials=hyperopt.SparkTrials(parallelism=1, spark_session=spark))


def test_kill_switch_at_call_time_runs_stock_hyperopt(
    spark, active, runtime_log, hyperopt_runs, monkeypatch
):
    monkeypatch.setenv(conf.DISABLED.name, "1")
    hyperopt.fmin(quadratic, SPACE, algo=rand.suggest, max_evals=2,
                  trials=hyperopt.SparkTrials(parallelism=1, spark_session=spark))
    assert announcements(runtime_log) == []
    assert len(hyperopt_runs) == 1


@pytest.mark.parametrize("value", [False, "false", "FALSE"])
def test_tracking_flag_off_says_once_how_to_turn_it_on(spark, active, runtime_log, value):
    spark.conf.set(conf.TRACK_HYPEROPT.name, value)
    try:
        hyperopt.fmin(quadratic, SPACE, algo=rand.suggest, max_evals=2,
                      trials=hyperopt.SparkTrials(parallelism=1, spark_session=spark))
    finally:
        spark.conf.unset(conf.TRACK_HYPEROPT.name)
    lines = [r.getMessage() for r in runtime_log.records if "tracking of this fmin is off" in r.getMessage()]
    assert len(lines) == 1
    assert f"spark.conf.set('{conf.TRACK_HYPEROPT.name}', 'true')" in lines[0]
