"""The dispatcher: launches each trial hyperopt's loop proposes as its own Spark job the moment a
slot is free, and handles timeout, early stopping and cancellation as hyperopt's SparkTrials does.

- The dispatcher thread wakes when a trial is proposed or finishes, not on a 1 s timer.
- One long-lived launcher thread per slot runs a trial's job (driver/launcher.py): the task
  carries the parameter values evaluated here (trial/evaluation.py) and the trial's environment;
  the objective travels once per fmin; the objective's return value becomes hyperopt's result here.
- Never more running trials than trials.parallelism; each trial ends in a final state, whatever
  fails on the way (trial_docs.py), and hyperopt's own lines go to its `hyperopt-spark` logger
  (stock_log.py).
"""

import queue
import threading
import time
import traceback
from typing import Optional, Protocol

from hyperopt import STATUS_OK, base
from hyperopt.utils import coarse_utcnow
from pyspark import cloudpickle

from runtime_ml import conf, log
from runtime_ml.compat import hyperopt_private, spark_trials, versions
from runtime_ml.driver import stock_log
from runtime_ml.driver.cluster import executor_slots
from runtime_ml.driver.hyperopt_loop import ShownTrials, stock_early_stop
from runtime_ml.driver.session import launcher_for
from runtime_ml.driver.trial_docs import write_cancellation, write_error, write_result
from runtime_ml.policy import ExecutorInternalError, note_after_launch
from runtime_ml.trial.evaluation import hyperopt_result, space_values
from runtime_ml.trial.outcome import TrialFailure
from runtime_ml.trial.results import is_nan_loss, with_result_hint
from runtime_ml.worker.task import PlainParams, SpaceOnExecutor, TrialTask

logger = log.logger()

CANCEL_AGAIN_SECONDS = 0.5  # how often the jobs of a cancelled fmin that still runs are cancelled
CANCEL_TIMEOUT = "fmin run timeout"
CANCEL_EARLY_STOP = "early stopping condition"
CANCEL_USER = "fmin run cancelled by user"
CANCEL_INTERNAL = "runtime-ml internal error"
# The installed hyperopt's early-stop semantics (see versions.early_stop_cancels_trials).
EARLY_STOP_CANCELS = versions.early_stop_cancels_trials(
    versions.installed_version("hyperopt"))


class CancelledBeforeItsJob(Exception):
    """A launched trial whose Spark job was not submitted: the fmin was cancelled first."""


class TrialListener(Protocol):
    """Per-trial hooks (tracking.runs.FminTracker implements them). Errors in them never reach
    hyperopt."""

    def trial_started(self, trial: dict) -> dict:
        """Returns environment variables for the trial's task on the executor."""
        ...

    def trial_finished(self, trial: dict, printed: Optional[str] = None) -> None:
        """`printed`: the end of what the trial printed (its text), or None."""
        ...


class Untracked:
    """The listener of an fmin that is not tracked: no environment, nothing to record."""

    def trial_started(self, trial: dict) -> dict:
        return {}

    def trial_finished(self, trial: dict, printed: Optional[str] = None) -> None:
        return None



class Dispatcher:
    """Launches each NEW trial as a Spark job as soon as a slot is free; handles timeout/early stop."""

    def __init__(self, trials, domain, payload, listener=None, early_stop_fn=None,
                 reuse_workers=True, keep_output=True, spread=True):
        self.trials = trials
        self.domain = domain
        self.payload = payload
        self.objective = None  # the launcher's handle to the shipped objective, once started
        self.space_on_executor = bool(domain.pass_expr_memo_ctrl)  # see worker.task.SpaceOnExecutor
        self._pickled_space = None
        self.reuse_workers = reuse_workers
        self.keep_output = keep_output
        self.strict = conf.strict_mode()  # carried to the executors by each trial's task
        self._printed = {}  # tid -> the end of what the trial printed, until it is recorded
        self.listener: TrialListener = listener or Untracked()
        self.early_stop_fn = early_stop_fn
        self.early_stop_args = []
        self.early_stop_view = stock_early_stop(early_stop_fn)
        self.stopped_early = False  # hyperopt 0.2.7: stop proposing, launched trials finish
        # As hyperopt: without job-group cancelling, cancellation waits for running trials.
        self.can_cancel = spark_trials.can_cancel_jobs(trials)
        self.launcher = launcher_for(spark_trials.session(trials), spark_trials.resource_profile(trials),
                                     self.can_cancel, executor_slots if spread else None)
        stock_log.job_group(self.launcher.job_group, self.launcher.job_description,
                            self.launcher.interrupt_on_cancel)
        self.internal_errors = []  # runtime-ml's own errors after a launch (each failed its trial)
        self._wake = threading.Condition()
        self._done = False
        self._changes = 0  # trials launched or finished and cancellations, for wait_for_change
        self._running = set()  # tids launched and not finished
        self._launched_before = 0  # no NEW trial document before this index
        self._completed = []  # finished trials, in the order they finished
        self._uncancellable = set()  # tids running when fmin was cancelled without job cancelling
        self._queue: queue.Queue = queue.Queue()  # launched trials waiting for a launcher thread
        self._threads = []
        self._thread = None
        self._started = time.monotonic()

    # -- called from other threads
    def free_slots(self) -> int:
        """Slots no trial runs in: parallelism less the trials launched and not finished."""
        return int(self.trials.parallelism) - len(self._running)

    def wake(self):
        with self._wake:
            self._wake.notify_all()

    def wait_for_change(self, seen: int, seconds: float) -> int:
        """Wait until a trial launched or finished or the fmin was cancelled or stopped since
        `seen` (a count this returned before), at most `seconds`; returns the count now."""
        with self._wake:
            self._wake.wait_for(lambda: self._changes != seen, seconds)
            return self._changes

    def _changed(self):
        """Called holding _wake: tell the dispatcher thread and hyperopt's loop."""
        self._changes += 1
        self._wake.notify_all()

    def start(self) -> None:
        self.objective = self.launcher.ship(self.payload)
        self.payload = None
        # One long-lived launcher thread per slot: a new Python thread per trial would pay for a
        # new py4j connection and JVM thread every time (about 0.1 s here).
        for index in range(max(1, int(self.trials.parallelism))):
            thread = threading.Thread(target=self._launcher_thread(), daemon=True,
                                      name=f"runtime-ml-launcher-{index}")
            self._threads.append(thread)
            thread.start()
        self._thread = threading.Thread(target=self._run, name="runtime-ml-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop launching, wait for the dispatcher and every launcher thread, free the shipped
        objective."""
        with self._wake:
            self._done = True
            self._changed()
        if self._thread is not None:
            self._thread.join()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(CANCEL_AGAIN_SECONDS)
            while thread.is_alive():
                if spark_trials.cancelled(self.trials) and self.can_cancel:
                    self._cancel_jobs()  # a job submitted after the fmin was cancelled
                thread.join(CANCEL_AGAIN_SECONDS)
        self._threads.clear()
        try:
            self.launcher.close()
        except Exception as error:  # every trial has its result: only the cluster's memory is left
            note_after_launch(self.internal_errors, "freeing the shipped objective",
                              "the results are kept.", error)

    def cancel(self, reason: str) -> None:
        """Cancel running and queued trials, as hyperopt's SparkTrials does (from any thread)."""
        with self._wake:
            if spark_trials.mark_cancelled(self.trials, reason):
                stock_log.fmin_cancelled(reason)
            if not self.can_cancel:  # hyperopt's way: running trials finish, and count as cancelled
                stock_log.cannot_cancel_jobs()
                self._uncancellable.update(self._running)
            else:
                stock_log.cancelling_jobs(self.launcher.job_group)
                self._cancel_jobs()
                for trial in hyperopt_private.unsynced_trial_docs(self.trials):
                    if trial["state"] == base.JOB_STATE_RUNNING:
                        trial["state"] = base.JOB_STATE_CANCEL
            self._cancel_unlaunched()
            self._changed()

    def _cancel_jobs(self):
        try:
            self.launcher.cancel()
        except Exception as error:  # the trials are still marked: fmin returns as their jobs end
            note_after_launch(self.internal_errors, "cancelling the fmin's Spark jobs",
                              "running trials end when their jobs do.", error)

    def _cancel_unlaunched(self):
        """Once the fmin is cancelled: every trial hyperopt counts and no launcher thread runs (NEW,
        inserted before or after the cancellation, refreshed or not; or RUNNING with nothing
        behind it) ends cancelled, so hyperopt's wait for unfinished trials ends."""
        for trial in hyperopt_private.unsynced_trial_docs(self.trials):
            if trial["state"] == base.JOB_STATE_NEW or (
                    trial["state"] == base.JOB_STATE_RUNNING and trial["tid"] not in self._running):
                trial["state"] = base.JOB_STATE_CANCEL
                trial["refresh_time"] = coarse_utcnow()

    # -- the dispatcher thread
    def _run(self):
        while True:
            with self._wake:
                if self._done:
                    if spark_trials.cancelled(self.trials):
                        self._cancel_unlaunched()
                        stock_log.no_new_trials()
                    return
                if spark_trials.cancelled(self.trials) and self.can_cancel and self._running:
                    # Spark cancels only the jobs running when asked: a trial whose job was being
                    # submitted then (a first job can take seconds) is cancelled at the next look
                    self._cancel_jobs()
                try:
                    self._launch_free_slots()
                    self._check_timeout()
                except Exception as error:  # nothing launches any more: end the fmin, not hang it
                    note_after_launch(self.internal_errors, "dispatching trials",
                                      "the fmin is cancelled.", error)
                    self.cancel(CANCEL_INTERNAL)
                self._wake.wait(timeout=self._next_check())

    def _launch_free_slots(self):
        """Launch NEW trials while slots are free: every document hyperopt inserted, also those its
        loop has not refreshed into `trials.trials` yet. After a cancellation, cancel them (stock
        launches them and writes them back as cancelled)."""
        if spark_trials.cancelled(self.trials):
            self._cancel_unlaunched()
            return
        docs = hyperopt_private.unsynced_trial_docs(self.trials)
        self._launched_before = first_new(docs, self._launched_before)
        for trial in docs[self._launched_before:]:
            if len(self._running) >= self.trials.parallelism:
                break
            if trial["state"] == base.JOB_STATE_NEW:
                self._launch(trial)

    def _next_check(self):
        """Seconds until the dispatcher looks again without being woken: at most 0.5, and no later
        than the fmin's timeout, so that it cancels on time."""
        timeout = self.trials.timeout
        if timeout is None or spark_trials.cancelled(self.trials):
            return CANCEL_AGAIN_SECONDS
        return min(CANCEL_AGAIN_SECONDS, max(0.001, timeout - (time.monotonic() - self._started)))

    def _check_timeout(self):
        timeout = self.trials.timeout
        if timeout is not None and not spark_trials.cancelled(self.trials):
            if time.monotonic() - self._started > timeout:
                self.cancel(CANCEL_TIMEOUT)

    def _launch(self, trial):
        trial["state"] = base.JOB_STATE_RUNNING
        trial["book_time"] = trial["refresh_time"] = coarse_utcnow()
        stock_log.trial_started(trial["tid"])
        self._running.add(trial["tid"])
        self._queue.put(trial)
        self._changed()

    # -- launcher threads, one trial at a time each
    def _launcher_thread(self):
        """A launcher thread's body, made in the caller's thread: the launcher's wrapper carries
        the caller's Spark local properties and tags from there."""
        served = []

        def serving():
            self._launcher()
            served.append(True)

        carried = self.launcher.thread_target(serving)

        def body():
            try:
                carried()
            except Exception as error:
                if served:  # the thread's Spark clean-up after its last trial: nothing is lost
                    note_after_launch(self.internal_errors, "ending a launcher thread",
                                      "every trial has its result.", error)
                else:  # the thread's Spark set-up failed: the trials it takes still end
                    failure = self._internal_error("starting a launcher thread", error)
                    self._launcher(lambda trial: failure)

        return body

    def _launcher(self, evaluate=None):
        while True:
            trial = self._queue.get()
            if trial is None:
                return
            self._run_trial(trial, evaluate or self._evaluate)

    def _run_trial(self, trial, evaluate):
        """Run one launched trial to a final state, whatever fails on the way."""
        try:
            outcome = evaluate(trial)
        except Exception as error:  # runtime-ml's own step failed: that trial fails, fmin goes on
            outcome = self._internal_error(f"running trial {trial['tid']}", error)
        try:
            with self._wake:
                self._record(trial, outcome)
        except Exception as error:  # e.g. the user's early_stop_fn raised: the trial is recorded
            logger.exception("error after trial %s finished", trial["tid"])
            if trial["state"] == base.JOB_STATE_RUNNING:
                write_error(trial, self._internal_error(f"recording trial {trial['tid']}", error))
        finally:
            with self._wake:
                self._running.discard(trial["tid"])
                self._changed()
            # Even when the user's early_stop_fn raised in _record: the trial's run must end.
            self._listener_call("trial_finished", trial, self._printed.pop(trial["tid"], None))

    def _evaluate(self, trial):
        """The trial's Spark job: hyperopt's result dict, a TrialFailure (the objective's or
        hyperopt's own exception), or the exception that ended the Spark job."""
        env = self._listener_call("trial_started", trial) or {}
        config = base.spec_from_misc(trial["misc"])
        try:
            params = self._params(trial["tid"], config)
        except Exception as error:  # the space itself failed for these values, as it would in stock
            return TrialFailure(error, traceback.format_exc())
        if spark_trials.cancelled(self.trials):  # cancelled since the trial was launched
            return CancelledBeforeItsJob(spark_trials.cancelled_reason(self.trials))
        task = TrialTask(self.objective, params, env, self.reuse_workers, self.keep_output,
                         strict=self.strict)
        try:
            output, self._printed[trial["tid"]], problems = self.launcher.run(task)
        except BaseException as error:  # Spark failed or the job was cancelled
            return error
        for text in problems:  # only under strict mode: raised after the fmin
            note_after_launch(self.internal_errors, f"running trial {trial['tid']}'s task",
                              "the trial's outcome is kept.", ExecutorInternalError(text))
        if isinstance(output, TrialFailure):
            return output
        try:
            return hyperopt_result(output)
        except Exception as error:  # hyperopt rejects what the objective returned
            return TrialFailure(error, with_result_hint(traceback.format_exc(), output))

    def _params(self, tid, config):
        """How the trial's task gets its parameter values: evaluated here, or on the executor."""
        if not self.space_on_executor:
            values = space_values(self.domain, config)
            try:
                return PlainParams(cloudpickle.dumps(values))
            except Exception as error:
                self.space_on_executor = True
                logger.info("trial %s's parameter values cannot be pickled (%s: %s); "
                            "from now on the search space is evaluated on the executors, as "
                            "hyperopt does.", tid, type(error).__name__, error)
        if self._pickled_space is None:
            self._pickled_space = cloudpickle.dumps(self.domain.expr)
        return SpaceOnExecutor(self._pickled_space, config)

    def _internal_error(self, what, error):
        """An error of runtime-ml's own while a trial was launched: the trial fails with it."""
        note_after_launch(self.internal_errors, what, "that trial fails and the fmin goes on.",
                          error)
        return TrialFailure(error, "".join(traceback.format_exception(
            type(error), error, error.__traceback__)))

    def _record(self, trial, outcome):
        tid = trial["tid"]
        shown = outcome.error if isinstance(outcome, TrialFailure) else outcome  # if cancelled
        if tid in self._uncancellable:  # hyperopt writes these back as cancelled
            stock_log.trial_cancelled(tid, shown)
            write_cancellation(trial, shown)
        elif not isinstance(outcome, (TrialFailure, BaseException)):
            stock_log.trial_succeeded(tid, outcome)
            write_result(trial, outcome)
            self._completed.append(trial)
            if is_nan_loss(outcome):
                logger.warning("trial %s returned loss=nan; hyperopt ignores it when it "
                               "picks the best trial.", tid)
            self._maybe_stop_early(outcome)
        elif spark_trials.cancelled(self.trials):
            stock_log.trial_cancelled(tid, shown)
            write_cancellation(trial, shown)
        elif cancelled_from_outside(outcome):
            # The caller's job group (a notebook's "cancel") or all jobs were cancelled.
            self.cancel(CANCEL_USER)
            stock_log.trial_cancelled(tid, shown)
            write_cancellation(trial, shown)
        else:
            failure = outcome if isinstance(outcome, TrialFailure) else TrialFailure(outcome)
            stock_log.trial_failed(tid, failure.error, failure.traceback_text)
            printed = last_lines(self._printed.get(tid))
            if printed:
                logger.warning("trial %s failed; the last lines it printed:\n%s", tid,
                               printed)
            write_error(trial, failure)
            self._completed.append(trial)

    def _maybe_stop_early(self, result):
        if self.early_stop_fn is None or result.get("status") != STATUS_OK:
            return
        # hyperopt's own early-stop functions read the newest trial as the one that just finished
        trials = ShownTrials(self.trials, list(self._completed)) if self.early_stop_view else \
            self.trials
        stop, self.early_stop_args = self.early_stop_fn(trials, *self.early_stop_args)
        if stop and EARLY_STOP_CANCELS:
            self.cancel(CANCEL_EARLY_STOP)
        elif stop and not self.stopped_early:
            self.stopped_early = True
            stock_log.early_stop_triggered()

    def _listener_call(self, name, trial, *args):
        """Tracking's per-trial hook; its failure never stops the trial (raised at the end of the
        fmin under RUNTIME_ML_STRICT)."""
        try:
            return getattr(self.listener, name)(trial, *args)
        except Exception as error:
            note_after_launch(self.internal_errors, f"tracking trial {trial['tid']} ({name})",
                              "the trial goes on.", error)
            return None


# Classic: the caller's job group or all jobs cancelled; Spark Connect: an operation interrupted
# (the caller's tag, or all of the session's operations).
OUTSIDE_CANCELLATION = ("cancelled part of cancelled job group", "part of cancellation of all jobs",
                        "[OPERATION_CANCELED]")


def first_new(docs, start):
    """The index of the first NEW document from `start` on (a trial never goes back to NEW, so
    those before `start` need no look), or len(docs); from 0 when the list got shorter."""
    index = start if start <= len(docs) else 0
    while index < len(docs) and docs[index]["state"] != base.JOB_STATE_NEW:
        index += 1
    return index


def cancelled_from_outside(outcome):
    """True when a trial's Spark job ended because someone else cancelled its job group or all
    jobs, or interrupted its Connect operation (never for a TrialFailure: the objective's or
    hyperopt's own exception)."""
    if not isinstance(outcome, BaseException):
        return False
    text = str(outcome)
    return any(marker in text for marker in OUTSIDE_CANCELLATION)


def last_lines(text, count=20):
    """The last `count` non-empty lines of what a trial printed ('' for None)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return "\n".join(lines[-count:])

