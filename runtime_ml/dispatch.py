"""runtime-ml's own run of a SparkTrials fmin: the same semantics as hyperopt's, without the waste.

hyperopt's SparkTrials forks a fresh Python worker for every trial (its task never reads its input,
so PySpark will not reuse the worker), sleeps 1 s in two polling loops, and proposes one trial at a
time. Here:
- the task drains its input, so PySpark reuses the Python worker across trials, and freezes the
  worker's heap after its first trial, so PySpark's gc.collect() between tasks stays cheap;
- the dispatcher thread wakes when a trial is proposed or finishes, not on a 1 s timer, and the
  proposing loop (hyperopt's public FMinIter) polls every POLL_SECONDS;
- hyperopt proposes as many trials as there are free slots (unless the user set max_queue_len),
  so TPE sees every finished result before it proposes the next trial.
Kept as in hyperopt: one single-task Spark job per trial, in job group Hyperopt_SparkTrials_<id>;
never more running trials than trials.parallelism; timeout, early_stop_fn (cancels running trials,
as hyperopt 0.3.0 does), loss_threshold and cancellation; trial documents, states and error tuples.

What this relies on in hyperopt (pinned by tests/test_hyperopt_contract.py on 0.2.7 and 0.3.0):
FMinIter's constructor and attributes, base.Domain.evaluate, base.spec_from_misc,
base.validate_timeout / validate_loss_threshold, JOB_STATE_*, and SparkTrials' `_spark`,
`_fmin_cancelled`, `_fmin_cancelled_reason`, `timeout` and `loss_threshold` attributes.
"""

import logging
import os
import pickle
import queue
import sys
import threading
import time
import traceback
import uuid

import numpy as np
from hyperopt import STATUS_OK, FMinIter, base
from hyperopt.fmin import space_eval
from hyperopt.utils import coarse_utcnow

from runtime_ml import versions
from runtime_ml.executor import (EnvOverride, end_leftover_mlflow_run, freeze_worker_heap_once,
                                 gpu_environment)
from runtime_ml.results import is_nan_loss, with_result_hint

logger = logging.getLogger("runtime_ml")

POLL_SECONDS = 0.02
JOB_GROUP_PREFIX = "Hyperopt_SparkTrials_"
CANCEL_TIMEOUT = "fmin run timeout"
CANCEL_EARLY_STOP = "early stopping condition"
CANCEL_USER = "fmin run cancelled by user"


class TrialListener:
    """Per-trial hooks (MLflow tracking implements them). Errors in them never reach hyperopt."""

    def trial_started(self, trial):
        """Returns environment variables for the trial's task on the executor."""
        return {}

    def trial_finished(self, trial):
        pass


class TrialTask:
    """The function each trial's one-task Spark job runs on an executor.

    It carries the objective and space already pickled once per fmin (`payload`), plus this
    trial's parameters and environment.
    """

    def __init__(self, payload, params, env):
        self.payload = payload
        self.params = params
        self.env = env

    def __call__(self, partition):
        for _ in partition:  # drained input lets PySpark reuse this Python worker for the next trial
            pass
        env = dict(self.env)
        env.update(gpu_environment())
        with EnvOverride(env):
            try:
                result = self._evaluate()
            except BaseException as error:  # returned, not raised: no Spark retry of user errors
                error._tb_str = with_result_hint(traceback.format_exc(), error)
                result = error
            finally:
                end_leftover_mlflow_run(env)
        if not isinstance(result, BaseException):  # a traceback would keep the trial's frames alive
            freeze_worker_heap_once()
        yield result

    def _evaluate(self):
        fn, space = pickle.loads(self.payload)
        domain = base.Domain(fn, space, pass_expr_memo_ctrl=None)
        return domain.evaluate(self.params, ctrl=None, attach_attachments=False)


def _write_result(trial, result):
    trial["state"] = base.JOB_STATE_DONE
    trial["result"] = result
    trial["refresh_time"] = coarse_utcnow()


def _write_error(trial, error):
    trial["state"] = base.JOB_STATE_ERROR
    trial["misc"]["error"] = (str(type(error)), error.__dict__.get("_tb_str", str(error)))
    trial["refresh_time"] = coarse_utcnow()


def _write_cancellation(trial, error):
    trial["state"] = base.JOB_STATE_CANCEL
    trial["misc"]["error"] = (str(type(error)), str(error))
    trial["refresh_time"] = coarse_utcnow()


class Dispatcher:
    """Launches each NEW trial as a Spark job as soon as a slot is free; handles timeout/early stop."""

    def __init__(self, trials, payload, listener=None, early_stop_fn=None):
        self.trials = trials
        self.payload = payload
        self.listener = listener or TrialListener()
        self.early_stop_fn = early_stop_fn
        self.early_stop_args = []
        self.sc = trials._spark.sparkContext
        self.job_group = JOB_GROUP_PREFIX + uuid.uuid4().hex[:12]
        self.job_description = "Trial evaluation jobs launched by hyperopt fmin (runtime-ml)"
        self._wake = threading.Condition()
        self._done = False
        self._running = set()  # tids launched and not finished
        self._queue = queue.Queue()  # launched trials waiting for a launcher thread
        self._threads = []
        self._thread = None
        self._started = time.monotonic()

    # -- called from other threads
    def wake(self):
        with self._wake:
            self._wake.notify_all()

    def start(self):
        # Every trial's job maps this one-row RDD: parallelize() per trial would ship the row to
        # the JVM again each time (a temp file and several py4j calls).
        self._one_row = self.sc.parallelize([0], 1)
        # One long-lived launcher thread per slot: a new Python thread per trial would pay for a
        # new py4j connection and JVM thread every time (about 0.1 s here).
        for index in range(max(1, int(self.trials.parallelism))):
            thread = threading.Thread(target=self._inheriting(self._launcher), daemon=True,
                                      name=f"runtime-ml-launcher-{index}")
            self._threads.append(thread)
            thread.start()
        self._thread = threading.Thread(target=self._run, name="runtime-ml-dispatcher", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop launching, wait for the dispatcher and every launcher thread."""
        with self._wake:
            self._done = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def cancel(self, reason):
        """Cancel running and queued trials, as hyperopt's SparkTrials does."""
        if not self.trials._fmin_cancelled:
            self.trials._fmin_cancelled = True
            self.trials._fmin_cancelled_reason = reason
            logger.warning("runtime-ml: fmin cancelled because of %s", reason)
        self.sc.cancelJobGroup(self.job_group)
        for trial in list(self.trials.trials):
            if trial["state"] in (base.JOB_STATE_NEW, base.JOB_STATE_RUNNING):
                trial["state"] = base.JOB_STATE_CANCEL

    # -- the dispatcher thread
    def _run(self):
        while True:
            with self._wake:
                if self._done:
                    return
                self._launch_free_slots()
                self._check_timeout()
                self._wake.wait(timeout=0.5)

    def _launch_free_slots(self):
        if self.trials._fmin_cancelled:
            return
        for trial in list(self.trials.trials):
            if len(self._running) >= self.trials.parallelism:
                break
            if trial["state"] == base.JOB_STATE_NEW:
                self._launch(trial)

    def _check_timeout(self):
        timeout = self.trials.timeout
        if timeout is not None and not self.trials._fmin_cancelled:
            if time.monotonic() - self._started > timeout:
                self.cancel(CANCEL_TIMEOUT)

    def _launch(self, trial):
        trial["state"] = base.JOB_STATE_RUNNING
        trial["book_time"] = trial["refresh_time"] = coarse_utcnow()
        self._running.add(trial["tid"])
        self._queue.put(trial)

    def _inheriting(self, target):
        """Carry the caller's Spark local properties (scheduler pool, tags) into the trial thread."""
        try:
            import pyspark
            from pyspark import inheritable_thread_target
        except ImportError:
            return target
        if versions.thread_target_takes_session(pyspark.__version__):
            return inheritable_thread_target(self.trials._spark)(target)
        return inheritable_thread_target(target)

    # -- launcher threads, one trial at a time each
    def _launcher(self):
        self.sc.setJobGroup(self.job_group, self.job_description, True)
        while True:
            trial = self._queue.get()
            if trial is None:
                return
            try:
                self._run_trial(trial)
            except Exception:  # e.g. the user's early_stop_fn raised: keep this slot alive
                logger.exception("runtime-ml: error after trial %s finished", trial["tid"])

    def _run_trial(self, trial):
        try:
            env = self._listener_call("trial_started", trial) or {}
            task = TrialTask(self.payload, base.spec_from_misc(trial["misc"]), env)
            try:
                outcome = self._one_row.mapPartitions(task).collect()[0]
            except BaseException as error:  # Spark failed or the job was cancelled
                outcome = error
            with self._wake:
                self._record(trial, outcome)
        finally:
            with self._wake:
                self._running.discard(trial["tid"])
                self._wake.notify_all()
            # Even when the user's early_stop_fn raised in _record: the trial's run must end.
            self._listener_call("trial_finished", trial)

    def _record(self, trial, outcome):
        if not isinstance(outcome, BaseException):
            _write_result(trial, outcome)
            if is_nan_loss(outcome):
                logger.warning("runtime-ml: trial %s returned loss=nan; hyperopt ignores it when it "
                               "picks the best trial.", trial["tid"])
            self._maybe_stop_early(outcome)
        elif self.trials._fmin_cancelled:
            _write_cancellation(trial, outcome)
        else:
            logger.error("runtime-ml: trial %s failed: %s\n%s", trial["tid"], outcome,
                         outcome.__dict__.get("_tb_str", ""))
            _write_error(trial, outcome)

    def _maybe_stop_early(self, result):
        if self.early_stop_fn is None or result.get("status") != STATUS_OK:
            return
        stop, self.early_stop_args = self.early_stop_fn(self.trials, *self.early_stop_args)
        if stop:
            self.cancel(CANCEL_EARLY_STOP)

    def _listener_call(self, name, trial):
        try:
            return getattr(self.listener, name)(trial)
        except Exception:
            from runtime_ml.patch import report_internal_error

            report_internal_error(f"tracking trial {trial['tid']} ({name})")
            return None


class SlotAwareFMinIter(FMinIter):
    """hyperopt's FMinIter, proposing only as many trials as there are free slots."""

    free_slots = None  # set per instance: a callable, or None to keep max_queue_len fixed

    @property
    def max_queue_len(self):
        if self.free_slots is not None:
            return max(1, self.free_slots())
        return self._fixed_queue_len

    @max_queue_len.setter
    def max_queue_len(self, value):
        self._fixed_queue_len = value


def run_spark_fmin(trials, fn, space, algo, max_evals, timeout, loss_threshold, max_queue_len,
                   rstate, verbose, pass_expr_memo_ctrl, catch_eval_exceptions, return_argmin,
                   show_progressbar, early_stop_fn, payload, trials_save_file="", listener=None,
                   queue_follows_slots=True):
    """SparkTrials.fmin, with runtime-ml's dispatch. Arguments as hyperopt passes them, plus
    `payload`: (fn, space) pickled once by validation.serialize_objective."""
    if timeout is not None:
        if trials.timeout is not None:
            logger.warning("Timeout param was defined in Trials object, ignoring fmin definition")
        else:
            base.validate_timeout(timeout)
            trials.timeout = timeout
    if loss_threshold is not None:
        base.validate_loss_threshold(loss_threshold)
        trials.loss_threshold = loss_threshold
    assert not pass_expr_memo_ctrl, "SparkTrials does not support `pass_expr_memo_ctrl`"
    assert not catch_eval_exceptions, "SparkTrials does not support `catch_eval_exceptions`"
    if rstate is None:  # as hyperopt.fmin does, for direct trials.fmin(...) calls
        seed = os.environ.get("HYPEROPT_FMIN_SEED", "")
        rstate = np.random.default_rng(int(seed) if seed else None)
    if max_evals is None:
        max_evals = sys.maxsize

    dispatcher = Dispatcher(trials, payload, listener, early_stop_fn)
    domain = base.Domain(fn, space, pass_expr_memo_ctrl=None)
    iterator = SlotAwareFMinIter(
        algo, domain, trials, max_evals=max_evals, timeout=timeout,
        loss_threshold=loss_threshold, rstate=rstate, verbose=verbose,
        max_queue_len=max_queue_len, poll_interval_secs=POLL_SECONDS,
        show_progressbar=show_progressbar, early_stop_fn=None, trials_save_file="",
    )
    iterator.catch_eval_exceptions = catch_eval_exceptions
    if queue_follows_slots:
        iterator.free_slots = lambda: trials.parallelism - len(dispatcher._running)

    insert = trials.insert_trial_docs

    def insert_and_wake(docs):  # the dispatcher launches new trials at once
        result = insert(docs)
        dispatcher.wake()
        return result

    trials.insert_trial_docs = insert_and_wake
    dispatcher.start()
    try:
        iterator.exhaust()
    except KeyboardInterrupt:
        dispatcher.cancel(CANCEL_USER)
        raise
    finally:
        dispatcher.stop()  # every trial thread has written its result back after this
        del trials.insert_trial_docs  # back to the class's method
        trials.refresh()
        logger.info(
            "runtime-ml: total trials: %d: %d succeeded, %d failed, %d cancelled.",
            trials.count_total_trials(), trials.count_successful_trials(),
            trials.count_failed_trials(), trials.count_cancelled_trials(),
        )

    if return_argmin:
        if len(trials.trials) == 0:
            raise Exception("There are no evaluation tasks, cannot return argmin of task losses.")
        return trials.argmin
    if len(trials) > 0:
        return space_eval(space, trials.argmin)
    return None
