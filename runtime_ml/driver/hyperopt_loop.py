"""What hyperopt's own fmin loop is handed while runtime-ml dispatches: an FMinIter that proposes
only while slots are free, and views of the SparkTrials for the functions that must see only
finished trials (hyperopt's early-stop functions, atpe)."""

from typing import Callable, Optional

from hyperopt import FMinIter


def stock_early_stop(early_stop_fn):
    """True for hyperopt's own early-stop functions (hyperopt.early_stop.no_progress_loss).

    They read the newest trial's loss (trials.trials[-1]), which under SparkTrials may still be
    running; they get a CompletedTrials view. A user's own function sees the SparkTrials as in
    hyperopt.
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
        return algo(new_ids, domain, CompletedTrials(trials, finished), seed)

    return suggest


class CompletedTrials:
    """The SparkTrials as hyperopt's early-stop functions expect it: `trials` holds the finished
    trials in the order they finished, the one that just finished last."""

    def __init__(self, trials, completed):
        self._trials = trials
        self.trials = list(completed)

    def __getattr__(self, name):
        return getattr(self._trials, name)

    def __iter__(self):
        return iter(self.trials)

    def __len__(self):
        return len(self.trials)


class SlotAwareFMinIter(FMinIter):
    """hyperopt's FMinIter, proposing trials only while there are free slots."""

    # Set per instance: free_slots, or None to keep max_queue_len fixed; stopped_early, telling
    # that early_stop_fn said stop.
    free_slots: Optional[Callable[[], int]] = None
    stopped_early: Optional[Callable[[], bool]] = None

    @property
    def is_cancelled(self):
        return super().is_cancelled or bool(self.stopped_early and self.stopped_early())

    @property
    def max_queue_len(self) -> int:
        if self.free_slots is not None:
            return max(1, self.free_slots())
        return self._fixed_queue_len

    @max_queue_len.setter
    def max_queue_len(self, value: int) -> None:
        self._fixed_queue_len = value

