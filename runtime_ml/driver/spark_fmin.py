"""SparkTrials.fmin as runtime-ml runs it: the same semantics as hyperopt's, without the waste.

hyperopt's SparkTrials forks a fresh Python worker for every trial (its task never reads its input,
so PySpark will not reuse the worker), ships the objective and evaluates the search space in every
trial's task (so every worker imports hyperopt), sleeps 1 s in two polling loops, and proposes one
trial at a time. Here hyperopt's own loop (FMinIter, hyperopt_loop.py) proposes and the dispatcher
(dispatcher.py) launches:
- the search space is evaluated on the driver and the objective's return value becomes hyperopt's
  result there (runtime_ml.trial.evaluation); the executor only calls the objective
  (worker.task.TrialTask);
- the objective travels once per fmin (shipped by the launcher), a trial's task carries only its
  parameter values and environment;
- the task drains its input, so PySpark reuses the Python worker across trials, and freezes the
  worker's heap after its first trial, so PySpark's gc.collect() between tasks stays cheap;
- the proposing loop waits for the dispatcher (a trial launched or finished) instead of polling;
- hyperopt proposes trials while slots are free, one ahead (unless the user set max_queue_len),
  one per algorithm call as with hyperopt's default; at parallelism 1 a trial is proposed once the
  previous result is in, so the search is hyperopt's sequential one (driver/proposals.py);
- hyperopt's tpe.suggest is answered by driver/fast_tpe.py: the same points, at a cost that does
  not grow in Python with the number of trials.
Kept as in hyperopt: one single-task Spark job per trial, in the caller's job group when it set one
(else Hyperopt_SparkTrials_<id>), with the trials' resource profile (runtime_ml.driver.launcher); never
more running trials than trials.parallelism; timeout, early_stop_fn (on hyperopt 0.3.0 it cancels
running trials; on 0.2.7 it stops proposing and running trials finish), loss_threshold and
cancellation; trial documents, states and error tuples; hyperopt's own lines on its
`hyperopt-spark` logger (stock_log).

What this relies on in hyperopt (pinned by tests/test_hyperopt_contract.py on 0.2.7 and 0.3.0):
FMinIter's constructor and attributes, base.Domain.evaluate (as runtime_ml.trial.evaluation repeats it),
base.spec_from_misc, base.validate_timeout / validate_loss_threshold, JOB_STATE_*,
Trials.new_trial_ids, and SparkTrials' private attributes, reached through
runtime_ml.compat.spark_trials, and its `timeout` and `loss_threshold`; Trials' private state
(SettledTrials) and tpe's graph builder (fast_tpe), reached through runtime_ml.compat.hyperopt_private
(pinned by tests/test_compat.py).
"""

import os
import sys

import numpy as np
from hyperopt import base
from hyperopt.fmin import space_eval

from runtime_ml.compat import hyperopt_private, spark_trials
from runtime_ml.driver import stock_log
from runtime_ml.driver.dispatcher import CANCEL_USER, Dispatcher
from runtime_ml.driver.fast_tpe import replacing
from runtime_ml.driver.hyperopt_loop import SlotAwareFMinIter, reads_every_loss, with_finished_trials
from runtime_ml.driver.proposals import proposes_ahead
from runtime_ml.driver.validation import NO_EVALUATIONS
from runtime_ml.policy import before_first_launch, raise_first_in_strict_mode

# The longest hyperopt's loop waits for the dispatcher before it looks again (it is woken by every
# launch, finish and cancellation).
LOOK_AGAIN_SECONDS = 0.5


def run_spark_fmin(trials, fn, space, algo, max_evals, timeout, loss_threshold, max_queue_len,
                   rstate, verbose, pass_expr_memo_ctrl, catch_eval_exceptions, return_argmin,
                   show_progressbar, early_stop_fn, payload, trials_save_file="", listener=None,
                   queue_follows_slots=True, reuse_workers=True, keep_output=True,
                   sequential_at_one=True, spread=True, fast_tpe=True):
    """SparkTrials.fmin, with runtime-ml's dispatch. Arguments as hyperopt passes them, plus
    `payload`: the objective pickled once by validation.serialize_objective.

    With queue_follows_slots (max_queue_len left at hyperopt's default of 1), hyperopt proposes
    trials while slots are free and one ahead, as stock (with sequential_at_one and parallelism 1,
    once the previous result is in), one trial per algorithm call as with hyperopt's default:
    anneal and user-written algorithms take exactly one id per call, and a seeded search draws one
    seed per trial as hyperopt's sequential fmin.
    """
    if timeout is not None and trials.timeout is not None:
        stock_log.fmin_timeout_ignored()
    elif timeout is not None:
        base.validate_timeout(timeout)
    if loss_threshold is not None:
        base.validate_loss_threshold(loss_threshold)
    spark_trials.set_fmin_limits(trials, timeout, loss_threshold)
    assert not pass_expr_memo_ctrl, "SparkTrials does not support `pass_expr_memo_ctrl`"
    assert not catch_eval_exceptions, "SparkTrials does not support `catch_eval_exceptions`"
    if rstate is None:  # as hyperopt.fmin does, for direct trials.fmin(...) calls
        seed = os.environ.get("HYPEROPT_FMIN_SEED", "")
        rstate = np.random.default_rng(int(seed) if seed else None)
    if max_evals is None:
        max_evals = sys.maxsize

    if reads_every_loss(algo):
        algo = with_finished_trials(algo)
    elif fast_tpe:
        algo = replacing(algo) or algo
    domain = base.Domain(fn, space, pass_expr_memo_ctrl=None)
    with before_first_launch("starting runtime-ml's dispatch"):
        dispatcher = Dispatcher(trials, domain, payload, listener, early_stop_fn, reuse_workers,
                                keep_output, spread)
        iterator = SlotAwareFMinIter(
            algo, domain, trials, max_evals=max_evals, timeout=timeout,
            loss_threshold=loss_threshold, rstate=rstate, verbose=verbose,
            max_queue_len=max_queue_len, poll_interval_secs=LOOK_AGAIN_SECONDS,
            show_progressbar=show_progressbar, early_stop_fn=None, trials_save_file="",
        )
        iterator.catch_eval_exceptions = catch_eval_exceptions
        iterator.stopped_early = lambda: dispatcher.stopped_early
        iterator.wait_for_change = dispatcher.wait_for_change
        iterator.propose_ahead = proposes_ahead(int(trials.parallelism), sequential_at_one)
        insert, new_ids = trials.insert_trial_docs, trials.new_trial_ids

        def insert_and_wake(docs):  # the dispatcher launches new trials at once
            result = insert(docs)
            dispatcher.wake()
            return result

        spark_trials.override(trials, insert_trial_docs=insert_and_wake)
        settled = hyperopt_private.SettledTrials.of(trials)
        if settled is not None:  # each look of hyperopt's loop walks the unsettled trials only
            spark_trials.override(trials, refresh=settled.refresh,
                                  count_by_state_unsynced=settled.count_by_state_unsynced)
        if queue_follows_slots:
            iterator.free_slots = dispatcher.free_slots
            spark_trials.override(trials, new_trial_ids=lambda n: new_ids(1))
        try:
            dispatcher.start()
        except BaseException:
            dispatcher.stop()
            spark_trials.restore_methods(trials)
            raise
    error = None
    try:
        try:
            iterator.exhaust()
        except KeyboardInterrupt:
            dispatcher.cancel(CANCEL_USER)
            raise
        finally:
            dispatcher.stop()  # every trial thread has written its result back after this
            spark_trials.restore_methods(trials)
            trials.refresh()
        # After stop(): results that arrived after a cancellation count too.
        if return_argmin:
            if len(trials.trials) == 0:
                raise Exception(NO_EVALUATIONS)
            result = trials.argmin
        else:
            result = space_eval(space, trials.argmin) if len(trials) > 0 else None
    except BaseException as raised:
        error = raised
        raise
    finally:
        stock_log.fmin_exited(error)
        stock_log.total_trials(trials)
    raise_first_in_strict_mode(dispatcher.internal_errors)
    return result
