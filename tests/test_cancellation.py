"""After an fmin is cancelled, no trial stays NEW or RUNNING, whichever way it is cancelled and
wherever hyperopt's loop is at that moment; so fmin always returns.

hyperopt's fmin loop waits until no document is NEW or RUNNING (FMinIter.block_until_done). Each
test holds the loop at a proposal, in the window between hyperopt inserting the trial's document
and refreshing its trials (or between proposing and inserting it), cancels the fmin there and
checks that the held trial ends cancelled and that fmin returns within a bound (real local[2]
Spark). The timeout case in both windows is the hang of issue 22: without the fix fmin never
returned.

A proposal that waits for its slot while a trial runs is what these windows need: at parallelism
1 runtime-ml proposes one only with spark.runtimeml.hyperopt.sequentialAtParallelismOne false
(stock's queue of one), so this module turns it off.
"""

import functools
import time

import hyperopt
import pytest
from conftest import fmin
from hyperopt import hp
from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_RUNNING
from interleavings import AFTER_INSERT, BEFORE_INSERT, HeldProposal, state_of, unfinished

from runtime_ml import conf
from runtime_ml.compat import versions

SPACE = hp.uniform("x", 0, 1)
BOUND = 60  # seconds an fmin gets to return; each finishes in a few when nothing hangs
EARLY_STOP_CANCELS = versions.early_stop_cancels_trials(versions.installed_version("hyperopt"))


@pytest.fixture(autouse=True)
def proposals_wait_for_their_slot(spark):
    spark.conf.set(conf.SEQUENTIAL_AT_ONE.name, "false")
    yield
    spark.conf.unset(conf.SEQUENTIAL_AT_ONE.name)


def sleeps(seconds):
    def objective(x):
        time.sleep(seconds)
        return x

    return objective


def one_slot_trials(spark, **kwargs):
    """parallelism 1: the first trial runs, the second is proposed and waits for its slot."""
    return hyperopt.SparkTrials(parallelism=1, spark_session=spark, **kwargs)


def tune(trials, objective, **kwargs):
    """This module's fmin: conftest's, bounded (a hang fails the test)."""
    return fmin(None, objective, SPACE, kwargs.pop("max_evals", 4), trials=trials, within=BOUND,
                return_argmin=False, **kwargs)


def times_out_now(trials):
    """The act that makes the fmin's timeout fire inside the window: the dispatcher reads
    trials.timeout at each look (at most 0.5 s apart)."""
    def act():
        trials.timeout = 0.001

    return act


def cancelled(trials):
    """The cancellation done: the first trial, running when it came, is written back cancelled
    (after the flag is set and every trial known then is marked)."""
    return lambda: trials._fmin_cancelled and state_of(trials, 0) == JOB_STATE_CANCEL


@pytest.mark.parametrize("window", [AFTER_INSERT, BEFORE_INSERT])
def test_a_timeout_while_a_trial_is_being_proposed_cancels_it_and_fmin_returns(spark, active,
                                                                              window):
    trials = one_slot_trials(spark)
    held = HeldProposal(trials, proposal=2, window=window, act=times_out_now(trials),
                        until=cancelled(trials))
    tune(trials, sleeps(30))
    assert held.waited_out is False  # the timeout fired inside the window
    assert trials._fmin_cancelled_reason == "fmin run timeout"
    assert held.held_state() == JOB_STATE_CANCEL
    assert unfinished(trials) == []
    assert trials.count_cancelled_trials() == 2  # the running one and the held one


def test_a_timeout_without_job_cancelling_lets_the_running_trial_finish_and_cancels_the_held_one(
        spark, active):
    trials = one_slot_trials(spark)
    trials._spark_supports_job_cancelling = False  # as hyperopt sets it on old PySpark
    held = HeldProposal(trials, proposal=2, window=AFTER_INSERT, act=times_out_now(trials),
                        until=cancelled(trials))
    tune(trials, sleeps(3))
    assert held.waited_out is False
    assert held.held_state() == JOB_STATE_CANCEL
    assert unfinished(trials) == []
    # hyperopt writes a trial that ran on past the cancellation back as cancelled
    assert trials.count_cancelled_trials() == 2


def first_waits_for_release(directory, x):
    """The first trial to start returns 0.0 once `directory`/release exists; the others do
    after 3 s."""
    import os
    import time

    try:
        os.close(os.open(os.path.join(directory, "first"), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        time.sleep(3)
        return 0.0
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(directory, "release")) and time.monotonic() < deadline:
        time.sleep(0.01)
    return 0.0


def releaser(directory):
    return lambda: (directory / "release").touch()


def test_an_early_stop_while_a_trial_is_being_proposed_ends_it_as_the_installed_hyperopt_does(
        spark, active, tmp_path):
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)

    def stopped():  # 0.3.0: cancelled, the other running trial marked; 0.2.7: the first is done
        states = [t["state"] for t in trials._dynamic_trials]
        if EARLY_STOP_CANCELS:
            return trials._fmin_cancelled and JOB_STATE_RUNNING not in states
        return JOB_STATE_DONE in states

    held = HeldProposal(trials, proposal=3, window=AFTER_INSERT, act=releaser(tmp_path),
                        until=stopped)
    tune(trials, functools.partial(first_waits_for_release, str(tmp_path)),
         early_stop_fn=lambda t, *args: (True, args))
    assert held.waited_out is False
    assert unfinished(trials) == []
    # hyperopt 0.3.0 cancels the trials not finished; 0.2.7 stops proposing and lets them run
    assert held.held_state() == (JOB_STATE_CANCEL if EARLY_STOP_CANCELS else JOB_STATE_DONE)


def test_a_loss_threshold_reached_while_a_trial_is_being_proposed_runs_it_as_stock_does(
        spark, active, tmp_path):
    trials = one_slot_trials(spark)
    first_done = lambda: state_of(trials, 0) == JOB_STATE_DONE  # noqa: E731
    held = HeldProposal(trials, proposal=2, window=AFTER_INSERT, act=releaser(tmp_path),
                        until=first_done)
    tune(trials, functools.partial(first_waits_for_release, str(tmp_path)), loss_threshold=0.5)
    assert held.waited_out is False
    assert unfinished(trials) == []
    # no cancellation: hyperopt's loop stops proposing and waits for the proposed trial
    assert held.held_state() == JOB_STATE_DONE and not trials._fmin_cancelled


def test_ctrl_c_while_a_trial_is_being_proposed_cancels_it(spark, active):
    def ctrl_c():  # where a SIGINT lands in the thread running fmin
        raise KeyboardInterrupt

    trials = one_slot_trials(spark)
    held = HeldProposal(trials, proposal=2, window=AFTER_INSERT, act=ctrl_c, until=lambda: True)
    with pytest.raises(KeyboardInterrupt):
        tune(trials, sleeps(30))
    assert held.held_state() == JOB_STATE_CANCEL
    assert unfinished(trials) == []


def test_the_callers_job_group_cancelled_while_a_trial_is_being_proposed_cancels_it(spark,
                                                                                    active):
    sc = spark.sparkContext

    def in_a_notebook_cell():
        sc.setJobGroup("notebook-cell-22", "cell 22", True)

    trials = one_slot_trials(spark)
    def cancel_the_cell():  # once the running trial's job is in the cell's group
        deadline = time.monotonic() + 30
        while not sc.statusTracker().getJobIdsForGroup("notebook-cell-22"):
            assert time.monotonic() < deadline, "the first trial's job never started"
            time.sleep(0.01)
        sc.cancelJobGroup("notebook-cell-22")

    held = HeldProposal(trials, proposal=2, window=AFTER_INSERT, until=cancelled(trials),
                        act=cancel_the_cell)
    tune(trials, sleeps(30), before=in_a_notebook_cell)
    assert held.waited_out is False
    assert trials._fmin_cancelled_reason == "fmin run cancelled by user"
    assert held.held_state() == JOB_STATE_CANCEL
    assert unfinished(trials) == []


class Injected(RuntimeError):
    """A failure of runtime-ml's own step, injected by a test."""


def raises_injected(*args, **kwargs):
    raise Injected("injected failure")


def test_a_launcher_thread_whose_spark_set_up_fails_still_ends_every_trial(spark, active,
                                                                           monkeypatch):
    from runtime_ml.driver.launcher import ClassicLauncher

    monkeypatch.setattr(ClassicLauncher, "thread_target", lambda self, target: raises_injected)
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    with pytest.raises(Injected):  # strict mode: raised after the fmin
        tune(trials, sleeps(0))
    assert unfinished(trials) == []
    assert {t["misc"]["error"][0] for t in trials._dynamic_trials} == {str(Injected)}


def test_a_spark_cancel_that_fails_still_ends_the_fmin_once_its_jobs_end(spark, active,
                                                                        monkeypatch):
    from runtime_ml.driver.launcher import ClassicLauncher

    monkeypatch.setattr(ClassicLauncher, "cancel", raises_injected)
    trials = one_slot_trials(spark)
    with pytest.raises(Injected):
        tune(trials, sleeps(3), timeout=1)
    assert trials._fmin_cancelled_reason == "fmin run timeout" and unfinished(trials) == []


def test_a_trial_left_running_with_no_job_behind_it_is_cancelled_and_fmin_returns(spark, active,
                                                                                 monkeypatch):
    """The last line of defence: a dispatcher step that fails midway (here after marking trial 1
    RUNNING, before handing it to a launcher thread) cancels the fmin, and every document with no
    Spark job behind it ends cancelled within the dispatcher's 0.5 s look."""
    from runtime_ml.driver import stock_log

    started = stock_log.trial_started
    monkeypatch.setattr(stock_log, "trial_started",
                        lambda tid: raises_injected() if tid == 1 else started(tid))
    trials = one_slot_trials(spark)
    with pytest.raises(Injected):
        tune(trials, sleeps(0))
    assert trials._fmin_cancelled_reason == "runtime-ml internal error"
    assert unfinished(trials) == [] and state_of(trials, 1) == JOB_STATE_CANCEL


def test_a_trial_job_that_reaches_spark_after_the_cancellation_is_cancelled_too(spark, active,
                                                                                monkeypatch):
    """Spark cancels only the jobs running when asked, and a fresh process's first job can take
    seconds to reach the scheduler: here every job reaches it after the timeout fired."""
    from runtime_ml.driver.launcher import ClassicLauncher

    trials = one_slot_trials(spark)
    run = ClassicLauncher.run

    def late(self, task):
        deadline = time.monotonic() + 30
        while not trials._fmin_cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        return run(self, task)

    monkeypatch.setattr(ClassicLauncher, "run", late)
    tune(trials, sleeps(30), timeout=1)
    assert trials._fmin_cancelled_reason == "fmin run timeout"
    assert state_of(trials, 0) == JOB_STATE_CANCEL and unfinished(trials) == []
