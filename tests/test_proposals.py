"""When hyperopt's algorithm is asked for a trial under runtime-ml (real local[2] Spark, real
hyperopt; the pure policy in runtime_ml.driver.proposals)."""

import contextlib
import functools
import random
import sys
import threading
import time

import numpy as np
import pytest
from conftest import fmin
from hyperopt import Trials, atpe, hp, tpe
from hyperopt import fmin as hyperopt_fmin
from test_fidelity import ALGOS as FIDELITY_ALGOS
from test_fidelity import ShortPolls

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


def seeded_generators(monkeypatch):
    """atpe draws from Python's and numpy's global generators, not from fmin's rstate; Python's is
    also drawn from by other threads of this process (urllib3's retry jitter, for one: a test
    before this one may leave MLflow requests retrying), so atpe gets one of its own."""
    monkeypatch.setattr(atpe, "random", random.Random(11))
    np.random.seed(11)


@contextlib.contextmanager
def drawing_from_pythons_random():
    """Another thread draws from Python's global generator every millisecond meanwhile."""
    done = threading.Event()

    def draw():
        while not done.wait(0.001):
            random.random()

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def outcome(run):
    """The trials' points, or the exception the search raised (hyperopt 0.2.7's atpe fails on
    numpy 1.24 and later, in hyperopt's own sequential fmin too)."""
    try:
        return points(run())
    except Exception as error:
        return type(error), str(error)


@pytest.mark.parametrize("name", sorted(ALGOS))
def test_at_parallelism_one_the_trials_are_sequential_fmins_trial_for_trial(spark, active, name,
                                                                           monkeypatch):
    # 23 trials: TPE proper (and mix's TPE) from the 21st, after hyperopt's 20 random ones.
    def sequential():
        trials = Trials()
        hyperopt_fmin(loss, SPACE, ALGOS[name], 23, trials=trials, show_progressbar=False,
                      rstate=np.random.default_rng(5))
        return trials

    def runtime_ml():
        return fmin(spark, loss, SPACE, 23, parallelism=1, algo=ALGOS[name], seed=5)[0]

    seeded_generators(monkeypatch)
    expected = outcome(sequential)
    seeded_generators(monkeypatch)
    with drawing_from_pythons_random():  # as a retrying MLflow request did once in CI
        found = outcome(runtime_ml)
    assert found == expected
    assert isinstance(expected, list) or name == "atpe", expected


def sleepy(seconds, x):
    import time

    time.sleep(seconds)
    return (x - 1) ** 2


def test_without_sequential_at_one_the_trials_are_stocks_at_parallelism_one(spark, active,
                                                                           monkeypatch):
    """Stock proposes trial k+1 while trial k runs; so does runtime-ml with
    sequentialAtParallelismOne false. Stock's polls take 0.1 s here, and a trial of 0.5 s
    outlasts them, so in both the history is trials 0..k-1 done, k running."""
    algo = functools.partial(tpe.suggest, n_startup_jobs=2)  # TPE proper from the 3rd trial
    space = hp.uniform("x", -5, 5)
    found = {}
    spark.conf.set(conf.SEQUENTIAL_AT_ONE.name, "false")
    try:
        for mode in ("stock", "runtime-ml"):
            with monkeypatch.context() as patched:
                if mode == "stock":
                    patched.setenv(conf.DISABLED.name, "1")
                    for module in ("hyperopt.spark", "hyperopt.fmin"):
                        patched.setattr(sys.modules[module], "time", ShortPolls())
                trials, _ = fmin(spark, functools.partial(sleepy, 0.5), space, 5, parallelism=1,
                                 algo=algo, seed=7)
            found[mode] = points(trials)
    finally:
        spark.conf.unset(conf.SEQUENTIAL_AT_ONE.name)
    assert len(found["stock"]) == 5
    assert found["runtime-ml"] == found["stock"]


def test_at_parallelism_one_a_timeout_between_two_trials_cancels_nothing(spark, active):
    """Forced: hyperopt's loop, woken by the first trial's end, is held in its refresh (before it
    asks for the next trial) until the timeout has fired. Nothing runs and nothing is proposed
    then, so nothing is cancelled and the result is kept (stock would cancel the trial it
    proposed ahead)."""
    import hyperopt
    from hyperopt.base import JOB_STATE_DONE
    from interleavings import state_of

    trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark, timeout=6)
    held = []

    def refresh():  # hyperopt's loop's own call, on the instance as interleavings.HeldProposal
        if not held and trials._dynamic_trials and state_of(trials, 0) == JOB_STATE_DONE:
            held.append(True)
            deadline = time.monotonic() + 30
            while not trials._fmin_cancelled_reason and time.monotonic() < deadline:
                time.sleep(0.05)
        type(trials).refresh(trials)

    trials.refresh = refresh
    _, best = fmin(spark, lambda x: x ** 2, hp.uniform("x", -1, 1), 5, trials=trials,
                   return_argmin=False)
    assert held == [True]
    assert trials._fmin_cancelled_reason == "fmin run timeout"
    assert (trials.count_successful_trials(), trials.count_cancelled_trials()) == (1, 0)
    assert best == trials.trials[0]["misc"]["vals"]["x"][0]


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
