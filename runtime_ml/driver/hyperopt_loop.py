"""What hyperopt's own fmin loop is handed while runtime-ml dispatches: an FMinIter that proposes
when slots are free and waits for the dispatcher, and views of the SparkTrials for the functions
that must see only finished trials (hyperopt's early-stop functions, atpe)."""

from typing import Callable, Optional

from hyperopt import FMinIter

from runtime_ml.driver.proposals import queue_length


def stock_early_stop(early_stop_fn):
    """True for hyperopt's own early-stop functions (hyperopt.early_stop.no_progress_loss).

    They read the newest trial's loss (trials.trials[-1]), which under SparkTrials may still be
    running; they get a view of the finished trials (ShownTrials). A user's own
    function sees the SparkTrials as in hyperopt.
    """
    return getattr(early_stop_fn, "__module__", None) == "hyperopt.early_stop"


def reads_every_loss(algo):
    """True for hyperopt's atpe, which reads every trial's loss: a running trial (no loss yet)
    makes it raise KeyError under SparkTrials, stock's included."""
    target = getattr(algo, "func", algo)
    return getattr(target, "__module__", None) == "hyperopt.atpe"


def with_finished_trials(algo):
    """`algo` proposing from the trials that have a loss (for reads_every_loss algorithms)."""

    def suggest(new_ids, domain, trials, seed):
        finished = [t for t in trials.trials if "loss" in (t.get("result") or {})]
        return algo(new_ids, domain, ShownTrials(trials, finished), seed)

    return suggest


class ShownTrials:
    """A Trials object as a function is shown it: `trials` is the documents it is shown (e.g. the
    finished ones, in the order they finished), every other attribute (new_trial_docs,
    attachments, ...) the real Trials' own."""

    def __init__(self, trials, docs):
        self._trials = trials
        self.trials = docs

    def __getattr__(self, name):
        return getattr(self._trials, name)

    def __iter__(self):
        return iter(self.trials)

    def __len__(self):
        return len(self.trials)


class SlotAwareFMinIter(FMinIter):
    """hyperopt's FMinIter, proposing trials as proposals.queue_length says (while slots are free,
    one ahead or, at parallelism 1, none), and waiting for the dispatcher instead of sleeping
    between its looks.

    hyperopt's loop sleeps `poll_interval_secs` between looks (in run and block_until_done);
    here reading it waits until a trial launches or finishes or the fmin is cancelled or stopped
    (at most the interval) and gives 0, so a freed slot's next trial is proposed at once.
    """

    # Set per instance: free_slots, or None to keep max_queue_len fixed; propose_ahead (see
    # proposals.queue_length); stopped_early, telling that early_stop_fn said stop;
    # wait_for_change(seen, seconds) -> changes, the dispatcher's, or None to sleep.
    free_slots: Optional[Callable[[], int]] = None
    propose_ahead = False
    stopped_early: Optional[Callable[[], bool]] = None
    wait_for_change: Optional[Callable[[int, float], int]] = None
    _seen_changes = 0

    @property
    def is_cancelled(self):
        return super().is_cancelled or bool(self.stopped_early and self.stopped_early())

    @property
    def max_queue_len(self) -> int:
        if self.free_slots is not None:
            return queue_length(self.free_slots(), self.propose_ahead)
        return self._fixed_queue_len

    @max_queue_len.setter
    def max_queue_len(self, value: int) -> None:
        self._fixed_queue_len = value

    @property
    def poll_interval_secs(self) -> float:
        if self.wait_for_change is None:
            return self._poll_seconds
        self._seen_changes = self.wait_for_change(self._seen_changes, self._poll_seconds)
        return 0.0

    @poll_interval_secs.setter
    def poll_interval_secs(self, value: float) -> None:
        self._poll_seconds = value
