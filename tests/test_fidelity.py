"""The same SparkTrials job, run with runtime-ml and with stock hyperopt (RUNTIME_ML_DISABLED=1) in
the same test, gives the same outcome: the same trials, results and results API, or the same
exception type and message (runtime-ml may add its fix after hyperopt's message).

With a seed and an algorithm that does not learn from history (rand), both propose the same points
whatever the parallelism; an adaptive algorithm's points depend on which results it has seen, so
there the comparison is of everything but the points. Stock's polling loops look every 0.1 s
instead of every 1 s where when they look cannot change the outcome (both_ways); hyperopt's own
SparkTrials suite (test_hyperopt_suite) runs stock's code as it is.
"""

import functools
import logging
import math
import sys
import time
import uuid

import hyperopt
import numpy as np
import pytest
from conftest import fmin
from hyperopt import STATUS_FAIL, STATUS_OK, anneal, atpe, early_stop, hp, mix, rand, tpe
from hyperopt.pyll import scope
from objectives import numeric_loss, quick_then_stalls, square

from runtime_ml import conf
from runtime_ml.compat import versions

EARLY_STOP_CANCELS = versions.early_stop_cancels_trials(versions.installed_version("hyperopt"))


def one_id_suggest(new_ids, domain, trials, seed):
    """A user-written algorithm in hyperopt's one-id-per-call habit."""
    (new_id,) = new_ids
    return rand.suggest([new_id], domain, trials, seed)


ALGOS = {
    "tpe": tpe.suggest,
    "rand": rand.suggest,
    "anneal": anneal.suggest,
    "atpe": atpe.suggest,
    "mix": functools.partial(mix.suggest, p_suggest=[(0.5, rand.suggest), (0.5, tpe.suggest)]),
    "tpe partial": functools.partial(tpe.suggest, n_startup_jobs=2),
    "user one-id": one_id_suggest,
}
HISTORY_FREE = {"rand", "user one-id"}
SPACE = hp.uniform("x", -3, 3)


def outcome(run):
    """What a job gave: ('returned', summary) or ('raised', exception)."""
    try:
        return "returned", run()
    except Exception as error:
        return "raised", error


class ShortPolls:
    """The `time` module as stock hyperopt's two polling loops (SparkTrials' dispatcher, fmin's
    wait for results) see it: their 1 s sleeps take 0.1 s."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        time.sleep(min(seconds, 0.1))


def both_ways(monkeypatch, run, short_polls=True):
    """runtime-ml's outcome, then stock's. `short_polls`: stock polls every 0.1 s instead of 1 s,
    for comparisons whose outcome cannot depend on when it looks (not timeouts, early stopping
    or loss thresholds, where it can)."""
    ours = outcome(run)
    with monkeypatch.context() as stock_only:
        stock_only.setenv(conf.DISABLED.name, "1")
        if short_polls:
            for module in ("hyperopt.spark", "hyperopt.fmin"):
                stock_only.setattr(sys.modules[module], "time", ShortPolls())
        stock = outcome(run)
    return ours, stock


def error_line(error_tuple):
    """A failed trial's error as (type, last line of its traceback, without the explanation
    runtime-ml appends to it for results hyperopt rejects)."""
    kind, text = error_tuple
    last = [line for line in str(text).splitlines() if line.strip()][-1]
    return kind, last.split(" [runtime-ml: ")[0]


def summary(trials, returned, points=True):
    """Everything a user reads from an fmin and its trials afterwards."""
    docs = sorted(trials._dynamic_trials, key=lambda t: t["tid"])

    def safe(read):
        try:
            return read()
        except Exception as error:
            return ("raises", type(error).__name__, str(error))

    described = {
        "tids": [t["tid"] for t in docs],
        "states": [t["state"] for t in docs],
        "errors": [error_line(t["misc"]["error"])[0] if "error" in t["misc"] else None
                   for t in docs],
        "len": len(trials),
        "statuses": trials.statuses(),
        "counts": (trials.count_successful_trials(), trials.count_failed_trials(),
                   trials.count_cancelled_trials(), trials.count_total_trials()),
        "returned keys": sorted(returned) if isinstance(returned, dict) else type(returned),
    }
    if points:
        described.update({
            "returned": returned,
            "vals": [t["misc"]["vals"] for t in docs],
            "results": [t["result"] for t in docs],
            "error lines": [error_line(t["misc"]["error"]) if "error" in t["misc"] else None
                            for t in docs],
            "losses": trials.losses(),
            "argmin": safe(lambda: trials.argmin),
            "best result": safe(lambda: trials.best_trial["result"]),
        })
    return described


def assert_same(ours, stock):
    assert ours[0] == stock[0], (ours, stock)
    if ours[0] == "returned":
        assert ours[1] == stock[1]
    else:
        assert isinstance(ours[1], type(stock[1])), (ours[1], stock[1])
        assert str(ours[1]).startswith(str(stock[1])), (str(ours[1]), str(stock[1]))


def tune(spark, fn=square, space=SPACE, algo=rand.suggest, max_evals=4, parallelism=2,
         points=True, trials=None, **kwargs):
    """The comparison both_ways runs twice (runtime-ml, then stock): conftest's fmin, seed 7, on
    a new SparkTrials or `trials()`, described by summary()."""
    def run():
        used, returned = fmin(spark, fn, space, max_evals, parallelism, algo, seed=7,
                              trials=trials() if trials else None, **kwargs)
        return summary(used, returned, points)
    return run


# ------------------------------------------------------------------ algorithms x parallelism


# Every algorithm at parallelism 3, where proposals come in batches; atpe at 1 too, the one
# parallelism at which stock does not fail it (see below). At parallelism 1 an adaptive algorithm
# proposes exactly stock's points: test_dispatch proves that for tpe.
@pytest.mark.parametrize("name, parallelism", [*((name, 3) for name in sorted(ALGOS)),
                                               ("atpe", 1)])
def test_every_algorithm_runs_as_on_stock(spark, active, monkeypatch, name, parallelism):
    points = name in HISTORY_FREE
    ours, stock = both_ways(monkeypatch, tune(spark, algo=ALGOS[name], parallelism=parallelism,
                                              max_evals=5, points=points))
    assert ours[0] == "returned", ours
    if name == "atpe" and stock[0] == "raised":
        # atpe reads every trial's loss; under stock SparkTrials a running trial has none yet
        # (KeyError: 'loss'). runtime-ml hands it the finished trials (README, Guarantees).
        assert isinstance(stock[1], KeyError), stock
        return
    assert_same(ours, stock)


@pytest.mark.parametrize("name", ["rand", "anneal"])
def test_a_larger_max_queue_len_is_passed_to_the_algorithm_as_on_stock(spark, active, monkeypatch,
                                                                       name):
    # rand proposes two trials per call as on stock; anneal takes one id per call and fails the
    # same way on both.
    ours, stock = both_ways(monkeypatch, tune(spark, algo=ALGOS[name], max_queue_len=2))
    assert_same(ours, stock)


def test_a_seeded_search_at_parallelism_2_proposes_stocks_points(spark, active, monkeypatch):
    ours, stock = both_ways(monkeypatch, tune(spark, algo=rand.suggest, parallelism=2,
                                              max_evals=6))
    assert ours[1]["vals"] == stock[1]["vals"] and len(ours[1]["vals"]) == 6


# ------------------------------------------------------------------ spaces

SPACES = {
    "nested conditional choice": hp.choice("model", [
        {"kind": "svm", "C": hp.lognormal("svm_C", 0, 1),
         "kernel": hp.choice("kernel", [{"name": "linear"},
                                        {"name": "rbf", "gamma": hp.uniform("gamma", 0, 1)}])},
        {"kind": "tree", "depth": scope.int(hp.quniform("depth", 1, 10, 1))},
    ]),
    "pchoice and randint": {"p": hp.pchoice("p", [(0.2, "a"), (0.8, "b")]),
                            "r": hp.randint("r", 5)},
    "normal family": [hp.normal("n", 0, 1), hp.qnormal("qn", 0, 3, 1), hp.lognormal("ln", 0, 1),
                      hp.qlognormal("qln", 0, 1, 1), hp.qloguniform("qlu", 0, 2, 1)],
    "tuple": (hp.uniform("a", 0, 1), hp.quniform("b", 0, 10, 2)),
    "bare uniform": hp.uniform("x", -3, 3),
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_kind_of_space_gives_stocks_points_and_values(spark, active, monkeypatch, name):
    ours, stock = both_ways(monkeypatch, tune(spark, fn=numeric_loss, space=SPACES[name],
                                              max_evals=5))
    assert ours[0] == "returned", ours
    assert_same(ours, stock)


# ------------------------------------------------------------------ where the space is evaluated
# runtime-ml evaluates the space on the driver; these are the cases that differ from doing it on
# the executor, as stock does.


@scope.define_if_new
def runtime_ml_test_lock(x):
    import threading

    return {"x": x, "lock": threading.Lock()}  # values that cannot be pickled on the driver


@scope.define_if_new
def runtime_ml_test_picky(x):
    if x > 0:
        raise ValueError(f"the space rejects x={x:.3f}")
    return x


# The objectives of these spaces live in this module: stock evaluates the space on the executor,
# which knows the scope functions above only by importing the module that defines them.
def loss_of_x(values):
    return float(values["x"] ** 2)


def square_here(x):
    return x ** 2


def asks_for_expr_memo_ctrl(expr, memo, ctrl):
    values = hyperopt.pyll.rec_eval(expr, memo=memo)
    return {"loss": values ** 2, "status": STATUS_OK, "ctrl": ctrl}


asks_for_expr_memo_ctrl.fmin_pass_expr_memo_ctrl = True


@pytest.mark.parametrize("fn, space", [
    (loss_of_x, scope.runtime_ml_test_lock(hp.uniform("x", -3, 3))),
    (square_here, scope.runtime_ml_test_picky(hp.uniform("x", -3, 3))),
    (asks_for_expr_memo_ctrl, SPACE),
], ids=["values that cannot be pickled", "a space that raises", "expr, memo, ctrl"])
def test_spaces_whose_evaluation_is_special_give_stocks_trials(spark, active, monkeypatch, fn,
                                                              space):
    ours, stock = both_ways(monkeypatch, tune(spark, fn=fn, space=space, max_evals=6))
    assert_same(ours, stock)


# ------------------------------------------------------------------ objective results


def returns_numpy(x):
    return np.float64(x ** 2)


def returns_dict_with_extras(x):
    return {"loss": x ** 2, "status": STATUS_OK, "accuracy": 1 - abs(x) / 3,
            "attachments": {"note": "hello"}}


def fails_by_status(x):
    return {"status": STATUS_FAIL, "why": "too large"} if x > 0 else {"loss": -x,
                                                                       "status": STATUS_OK}


def raises_sometimes(x):
    if x > 0:
        raise ValueError(f"x={x:.3f} is positive")
    return -x


def always_raises(x):
    raise RuntimeError("broken objective")


def returns_none(x):
    return None


def returns_text(x):
    return "0.5"


OBJECTIVES = [returns_numpy, returns_dict_with_extras, fails_by_status, raises_sometimes,
              always_raises, returns_none, returns_text]


@pytest.mark.parametrize("return_argmin", [True, False])
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda f: f.__name__)
def test_every_kind_of_result_is_recorded_as_on_stock(spark, active, monkeypatch, objective,
                                                     return_argmin):
    ours, stock = both_ways(monkeypatch, tune(spark, fn=objective, return_argmin=return_argmin))
    assert_same(ours, stock)


# ------------------------------------------------------------------ the trials object


def test_a_second_fmin_on_the_same_trials_continues_as_on_stock(spark, active, monkeypatch):
    def run():
        trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
        first = tune(spark, max_evals=3, trials=lambda: trials)()
        second = tune(spark, max_evals=6, trials=lambda: trials)()
        return first, second, hyperopt.space_eval(SPACE, trials.argmin)

    ours, stock = both_ways(monkeypatch, run)
    assert ours[0] == "returned" and ours[1][1]["len"] == 6
    assert_same(ours, stock)


def test_a_passed_spark_session_and_the_active_one_are_the_same_job(spark, active, monkeypatch):
    ours, stock = both_ways(monkeypatch, tune(
        spark, trials=lambda: hyperopt.SparkTrials(parallelism=2)))
    assert_same(ours, stock)


@pytest.mark.parametrize("stop_after", [2, 3])
def test_a_users_early_stop_fn_stops_as_on_stock(spark, active, monkeypatch, stop_after):
    def enough(trials, *args):
        done = sum(1 for t in trials if t["result"]["status"] == STATUS_OK)
        return done >= stop_after, []

    def run():
        trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark)
        hyperopt.fmin(square, SPACE, algo=rand.suggest, max_evals=10, trials=trials,
                      early_stop_fn=enough, rstate=np.random.default_rng(7),
                      show_progressbar=False)
        return trials._fmin_cancelled_reason, trials.count_successful_trials() >= stop_after, \
            trials.count_successful_trials() < 10

    ours, stock = both_ways(monkeypatch, run, short_polls=False)
    # hyperopt 0.3.0 cancels the fmin for it; 0.2.7's fmin loop just stops proposing
    reason = "early stopping condition" if EARLY_STOP_CANCELS else None
    assert ours == stock == ("returned", (reason, True, True))


def test_hyperopts_no_progress_loss_stops_a_spark_search(spark, active):
    # Stock SparkTrials' dispatcher dies on it (KeyError: 'loss' on a running trial) and fmin
    # never returns, so this compares with what it does on plain Trials: it stops early.
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    hyperopt.fmin(lambda x: 1.0, SPACE, algo=rand.suggest, max_evals=40, trials=trials,
                  early_stop_fn=early_stop.no_progress_loss(3), show_progressbar=False)
    assert trials._fmin_cancelled_reason == ("early stopping condition" if EARLY_STOP_CANCELS else None)
    assert 3 <= trials.count_successful_trials() < 40


def test_a_loss_threshold_stops_as_on_stock(spark, active, monkeypatch):
    def run():
        trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark)
        hyperopt.fmin(square, SPACE, algo=rand.suggest, max_evals=30, trials=trials,
                      loss_threshold=1.0, rstate=np.random.default_rng(7), show_progressbar=False)
        return min(trials.losses()) < 1.0, len(trials.trials) < 30

    ours, stock = both_ways(monkeypatch, run, short_polls=False)
    assert ours == stock == ("returned", (True, True))


@pytest.mark.parametrize("where", ["SparkTrials", "fmin"])
def test_a_timeout_keeps_finished_trials_and_cancels_the_rest(spark, active, monkeypatch, tmp_path,
                                                               where):
    """The first trial returns at once and the later ones outlast the timeout: the timed-out fmin
    has a finished trial and a running one whatever the machine's speed (stock's first result
    can take 5 s on a loaded machine: its 1 s polls, a worker's start)."""
    def run():
        timeout = 8
        record_dir = tmp_path / uuid.uuid4().hex
        record_dir.mkdir()
        trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark,
                                      timeout=timeout if where == "SparkTrials" else None)
        hyperopt.fmin(functools.partial(quick_then_stalls, str(record_dir), 1), SPACE,
                      algo=rand.suggest, max_evals=20, trials=trials,
                      timeout=timeout if where == "fmin" else None, show_progressbar=False,
                      rstate=np.random.default_rng(7))
        return (trials._fmin_cancelled, trials._fmin_cancelled_reason,
                trials.count_successful_trials(), trials.count_cancelled_trials() >= 1)

    ours, stock = both_ways(monkeypatch, run, short_polls=False)
    assert ours == stock == ("returned", (True, "fmin run timeout", 1, True))


def test_timeout_cancels_a_running_trial_with_hyperopts_lines(spark, active, caplog):
    caplog.set_level(logging.DEBUG, logger="hyperopt-spark")
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark, timeout=2)
    hyperopt.fmin(lambda x: time.sleep(30) or x, SPACE, algo=rand.suggest, max_evals=1,
                  trials=trials, return_argmin=False, show_progressbar=False)
    lines = "\n".join(r.getMessage() for r in caplog.records if r.name == "hyperopt-spark")
    assert trials.count_cancelled_trials() == 1
    for line in ("fmin cancelled because of fmin run timeout", "Cancelling all running jobs",
                 "trial task 0 cancelled", "trial 0 task thread catches an exception",
                 "fmin is cancelled, so new trials will not be launched",
                 "Total Trials: 1: 0 succeeded, 0 failed, 1 cancelled."):
        assert line in lines


# ------------------------------------------------------------------ the user's input


@pytest.mark.parametrize("kwargs", [{"parallelism": "2"}, {"timeout": -5}, {"timeout": True},
                                    {"parallelism": [2]}])
def test_input_stock_rejects_is_rejected_with_stocks_type_and_message_first(spark, active,
                                                                            monkeypatch, kwargs):
    ours, stock = both_ways(monkeypatch, lambda: hyperopt.SparkTrials(spark_session=spark,
                                                                      **kwargs))
    assert ours[0] == "raised" and "runtime-ml:" in str(ours[1])
    assert_same(ours, stock)


@pytest.mark.parametrize("max_evals", [0, -1])
def test_max_evals_that_evaluates_nothing_fails_as_on_stock(spark, active, monkeypatch, max_evals):
    ours, stock = both_ways(monkeypatch, tune(spark, max_evals=max_evals))
    assert ours[0] == "raised" and "max_evals=1 or more" in str(ours[1])
    assert_same(ours, stock)
    ours, stock = both_ways(monkeypatch, tune(spark, max_evals=max_evals, return_argmin=False))
    assert_same(ours, stock)


@pytest.mark.parametrize("parallelism, used", [(np.int64(2), 2), (2.5, 2), (True, 1),
                                               (float("nan"), 2)])
def test_parallelism_values_stock_accepts_are_accepted(spark, active, runtime_log, parallelism,
                                                       used):
    trials = hyperopt.SparkTrials(parallelism=parallelism, spark_session=spark)
    hyperopt.fmin(square, SPACE, algo=rand.suggest, max_evals=3, trials=trials,
                  show_progressbar=False)
    assert trials.count_successful_trials() == 3 and trials.actual_parallelism == used
    warned = [r.getMessage() for r in runtime_log.records if r.levelno == logging.WARNING
              and f"parallelism={parallelism!r}" in r.getMessage()]
    assert bool(warned) is not isinstance(parallelism, np.integer), warned


def test_a_nan_timeout_is_accepted_with_a_warning_and_never_fires(spark, active, runtime_log):
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark, timeout=float("nan"))
    hyperopt.fmin(square, SPACE, algo=rand.suggest, max_evals=3, trials=trials,
                  show_progressbar=False)
    assert trials.count_successful_trials() == 3 and not trials._fmin_cancelled
    assert any("timeout=nan" in r.getMessage() and "no timeout applies" in r.getMessage()
               for r in runtime_log.records if r.levelno == logging.WARNING)
    assert math.isnan(trials.timeout)
