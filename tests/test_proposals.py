"""When hyperopt's algorithm is asked for a trial under runtime-ml (real local[2] Spark, real
hyperopt; the pure policy in runtime_ml.driver.proposals)."""

import functools
import random

import numpy as np
import pytest
from conftest import fmin
from hyperopt import Trials, hp, tpe
from hyperopt import fmin as hyperopt_fmin
from test_fidelity import ALGOS as FIDELITY_ALGOS

from runtime_ml import conf
from runtime_ml.driver import proposals, spark_fmin

SPACE = {"x": hp.uniform("x", -3, 3),
         "branch": hp.choice("branch", [0, {"depth": hp.quniform("depth", 1, 6, 1)}])}
ALGOS = {name: FIDELITY_ALGOS[name] for name in ("tpe", "anneal", "rand", "atpe", "mix")}


def loss(params):
    branch = params["branch"]
    return (params["x"] - 1) ** 2 + (0 if branch == 0 else 0.1 * branch["depth"])


def points(trials):
    return [t["misc"]["vals"] for t in sorted(trials.trials, key=lambda t: t["tid"])]


def seeded_globals():
    """atpe draws from Python's and numpy's global generators, not from fmin's rstate."""
    random.seed(11)
    np.random.seed(11)


def outcome(run):
    """The trials' points, or the exception the search raised (hyperopt 0.2.7's atpe fails on
    numpy 1.24 and later, in hyperopt's own sequential fmin too)."""
    try:
        return points(run())
    except Exception as error:
        return type(error), str(error)


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_at_parallelism_one_the_trials_are_sequential_fmins_trial_for_trial(spark, active, name):
    # 23 trials: TPE proper (and mix's TPE) from the 21st, after hyperopt's 20 random ones.
    def sequential():
        trials = Trials()
        hyperopt_fmin(loss, SPACE, ALGOS[name], 23, trials=trials, show_progressbar=False,
                      rstate=np.random.default_rng(5))
        return trials

    seeded_globals()
    expected = outcome(sequential)
    seeded_globals()
    found = outcome(lambda: fmin(spark, loss, SPACE, 23, parallelism=1, algo=ALGOS[name],
                                 seed=5)[0])
    assert found == expected
    assert isinstance(expected, list) or name == "atpe", expected


def sleepy(seconds, x):
    import time

    time.sleep(seconds)
    return (x - 1) ** 2


def test_without_sequential_at_one_the_trials_are_stocks_at_parallelism_one(spark, active,
                                                                           monkeypatch):
    """Stock proposes trial k+1 while trial k runs; so does runtime-ml with
    sequentialAtParallelismOne false. A trial
    of 1 s outlasts stock's 1 s proposal poll, so in both the history is trials 0..k-1 done, k
    running."""
    algo = functools.partial(tpe.suggest, n_startup_jobs=2)  # TPE proper from the 3rd trial
    space = hp.uniform("x", -5, 5)
    found = {}
    for mode, disabled in (("stock", "1"), ("runtime-ml", "")):
        monkeypatch.setenv(conf.DISABLED.name, disabled)
        spark.conf.set(conf.SEQUENTIAL_AT_ONE.name, "false")
        try:
            trials, _ = fmin(spark, functools.partial(sleepy, 1.0), space, 5, parallelism=1,
                             algo=algo, seed=7)
        finally:
            spark.conf.unset(conf.SEQUENTIAL_AT_ONE.name)
        found[mode] = points(trials)
    assert len(found["stock"]) == 5
    assert found["runtime-ml"] == found["stock"]


def test_hyperopts_loop_is_woken_by_the_dispatcher_not_by_its_poll(spark, active, monkeypatch):
    # With a 60 s look-again bound, only the dispatcher's wake-ups can get 4 sequential trials
    # proposed, launched and waited for within 30 s.
    monkeypatch.setattr(spark_fmin, "LOOK_AGAIN_SECONDS", 60.0)
    trials, _ = fmin(spark, lambda x: x ** 2, hp.uniform("x", -1, 1), 4, parallelism=1,
                     within=30)
    assert trials.count_successful_trials() == 4


# ------------------------------------------------------------------ the pure policy

@pytest.mark.parametrize("free, ahead, expected", [(0, False, 0), (2, False, 2), (-1, False, 0),
                                                   (0, True, 1), (3, True, 3)])
def test_the_queue_holds_one_proposal_per_free_slot_or_one_ahead(free, ahead, expected):
    assert proposals.queue_length(free, ahead) == expected


@pytest.mark.parametrize("parallelism, sequential_at_one, ahead", [
    (1, True, False), (1, False, True), (2, True, True), (32, False, True)])
def test_only_parallelism_one_waits_for_the_previous_result(parallelism, sequential_at_one,
                                                            ahead):
    assert proposals.proposes_ahead(parallelism, sequential_at_one) is ahead
