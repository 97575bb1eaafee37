"""Forces the interleavings of hyperopt's fmin loop and runtime-ml's dispatcher that a test based
on timing could only hope for, and runs an fmin so that a hang fails the test instead of the run.

Imported by the tests and by tests/connect_scenario.py (not a test module).
"""

import threading
import time

from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_NEW, JOB_STATE_RUNNING

UNFINISHED = (JOB_STATE_NEW, JOB_STATE_RUNNING)
# hyperopt's fmin loop proposes a trial, inserts its document (runtime-ml wakes its dispatcher
# there), and only then refreshes the trials (hyperopt/fmin.py, FMinIter.run).
BEFORE_INSERT = "proposed, not yet inserted"
AFTER_INSERT = "inserted, not yet refreshed"


class HeldProposal:
    """Holds hyperopt's fmin loop at its `proposal`-th proposal (1-based), in `window`, runs
    `act` there and waits until `until()` holds (at most `wait` seconds); then lets it go on.

    It sits on the SparkTrials instance (insert_trial_docs and refresh), beneath what runtime-ml
    wraps, so the order of calls is the one hyperopt and runtime-ml make.
    """

    def __init__(self, trials, proposal, window, until, act=None, wait=30.0):
        self.trials = trials
        self.proposal = proposal
        self.window = window
        self.until = until
        self.act = act
        self.wait = wait
        self.held_tid = None  # the held proposal's trial id, once inserted
        self.waited_out = None  # True when `until` did not hold within `wait`
        self._inserts = 0
        self._armed = False
        trials.insert_trial_docs = self._insert_trial_docs
        trials.refresh = self._refresh

    def _insert_trial_docs(self, docs):
        self._inserts += 1
        holding = self._inserts == self.proposal
        if holding and self.window == BEFORE_INSERT:
            self._hold()
        tids = type(self.trials).insert_trial_docs(self.trials, docs)
        if holding:
            self.held_tid = tids[0]
            self._armed = self.window == AFTER_INSERT
        return tids

    def _refresh(self):
        if self._armed:
            self._armed = False
            self._hold()
        type(self.trials).refresh(self.trials)

    def _hold(self):
        if self.act is not None:
            self.act()
        deadline = time.monotonic() + self.wait
        while not self.until() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.waited_out = not self.until()

    def held_state(self):
        return state_of(self.trials, self.held_tid)


def state_of(trials, tid):
    return next(t["state"] for t in trials._dynamic_trials if t["tid"] == tid)


def unfinished(trials):
    """(tid, state) of every document hyperopt would still wait for (its unsynced count)."""
    return [(t["tid"], t["state"]) for t in trials._dynamic_trials if t["state"] in UNFINISHED]


def fmin_within(seconds, trials, before=None, **fmin_kwargs):
    """hyperopt.fmin in a thread of its own, given `seconds` to return: ('returned', value) or
    ('raised', exception). An fmin still running then raises AssertionError naming the documents
    it waits for, after cancelling those so that its threads end."""
    import hyperopt

    outcome = []

    def target():
        try:
            if before is not None:
                before()
            outcome.append(("returned", hyperopt.fmin(trials=trials, **fmin_kwargs)))
        except BaseException as error:  # noqa: B036 - KeyboardInterrupt is an outcome here
            outcome.append(("raised", error))

    thread = threading.Thread(target=target, name="test-fmin", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        waiting_for = unfinished(trials)
        for trial in trials._dynamic_trials:  # let the stuck fmin end
            if trial["state"] in UNFINISHED:
                trial["state"] = JOB_STATE_CANCEL
        thread.join(30)
        raise AssertionError(f"fmin did not return within {seconds} s; it waits for these "
                             f"(tid, state) trials forever: {waiting_for}")
    return outcome[0]
