"""When hyperopt's algorithm is asked for a trial, and what it is shown of the trials that have not
finished: runtime-ml's proposal policy, in plain functions.

hyperopt's own loop (driver/hyperopt_loop.py) asks these while the dispatcher launches trials on
Spark; benchmarks/search_quality.py asks the same functions on a simulated clock, so the
benchmark measures the code users run. Nothing here touches Spark or threads.

When: at parallelism 1 a trial is proposed once the previous trial's result is in, so the search
is hyperopt's sequential one, trial for trial (Spark conf
spark.runtimeml.hyperopt.sequentialAtParallelismOne, on by default). Otherwise one trial is kept
proposed ahead of a free slot, as stock SparkTrials does: it is proposed while the trials before
it run. Proposing when a slot frees instead (with one more result, one fewer unfinished trial) was
not better in the benchmark (benchmarks/README.md, search quality), so it is there only for it.

What: an unfinished trial is shown to the algorithm as hyperopt shows it (a trial with no loss yet:
TPE counts it toward its random start-up and as a bad trial); the other ways the parallel samplers
handle it are here as PENDING_WAYS for the benchmark to measure; none was better.
"""

import functools
from typing import Callable, List

# How an unfinished (NEW or RUNNING) trial is shown to tpe.suggest.
PENDING_AS_HYPEROPT = "hyperopt"  # as it is: no loss yet (TPE: an infinite loss)
PENDING_LEFT_OUT = "left-out"  # not shown: TPE starts up and splits on finished trials only
PENDING_STARTUP_FINISHED = "startup-finished"  # random start-up until n_startup_jobs have finished
PENDING_MEAN_LIAR = "mean-liar"  # shown with the mean finished loss (a constant liar)
PENDING_WAYS = (PENDING_AS_HYPEROPT, PENDING_LEFT_OUT, PENDING_STARTUP_FINISHED, PENDING_MEAN_LIAR)

UNFINISHED_STATES = frozenset({0, 1})  # hyperopt.base.JOB_STATE_NEW, JOB_STATE_RUNNING


def proposes_ahead(parallelism: int, sequential_at_one: bool) -> bool:
    """Whether a trial is proposed ahead of a free slot: always, except at parallelism 1 with
    sequential_at_one."""
    return not (parallelism <= 1 and sequential_at_one)


def queue_length(free_slots: int, ahead: bool) -> int:
    """How many proposed, not yet launched trials hyperopt's loop may hold (its max_queue_len).

    Not ahead: one per free slot, so a trial is proposed only when it can launch, and none while
    every slot runs a trial. Ahead: at least one, as stock SparkTrials' queue of one.
    """
    free = max(0, free_slots)
    return max(1, free) if ahead else free


def is_tpe(algo) -> bool:
    """hyperopt's tpe.suggest, bare or through functools.partial."""
    from hyperopt import tpe

    return getattr(algo, "func", algo) is tpe.suggest


def finished(doc) -> bool:
    return doc["state"] not in UNFINISHED_STATES


def shown_trials(docs: List[dict], way: str) -> List[dict]:
    """The trial documents the algorithm is shown, unfinished trials handled `way` (a PENDING_WAYS
    name other than startup-finished, which changes the algorithm's start-up, not its trials)."""
    if way in (PENDING_AS_HYPEROPT, PENDING_STARTUP_FINISHED):
        return list(docs)
    done = [doc for doc in docs if finished(doc)]
    if way == PENDING_LEFT_OUT:
        return done
    if way == PENDING_MEAN_LIAR:
        losses = [doc["result"]["loss"] for doc in done if doc["result"].get("loss") is not None]
        if not losses:
            return done
        lie = sum(losses) / len(losses)
        return [doc if finished(doc) else dict(doc, result={"status": "ok", "loss": lie})
                for doc in docs]
    raise ValueError(f"unknown way to show unfinished trials: {way!r}; one of {PENDING_WAYS}")


class ShownTrials:
    """A Trials object as the algorithm sees it: `trials` is the documents it is shown, every other
    attribute (new_trial_docs, attachments, ...) the real Trials' own."""

    def __init__(self, trials, docs):
        self._trials = trials
        self.trials = docs

    def __getattr__(self, name):
        return getattr(self._trials, name)

    def __iter__(self):
        return iter(self.trials)

    def __len__(self):
        return len(self.trials)


def startup_jobs(algo) -> int:
    """tpe.suggest's n_startup_jobs: the partial's keyword, else hyperopt's default."""
    import inspect

    from hyperopt import tpe

    keywords = getattr(algo, "keywords", None) or {}
    if "n_startup_jobs" in keywords:
        return keywords["n_startup_jobs"]
    return inspect.signature(tpe.suggest).parameters["n_startup_jobs"].default


def showing_pending(algo, way: str) -> Callable:
    """`algo` with unfinished trials shown `way`; tpe.suggest only (bare or partial): any other
    algorithm, or the hyperopt way, is returned as it is, so it keeps its own meaning."""
    if way == PENDING_AS_HYPEROPT or not is_tpe(algo):
        return algo
    if way not in PENDING_WAYS:
        raise ValueError(f"unknown way to show unfinished trials: {way!r}; one of {PENDING_WAYS}")

    @functools.wraps(getattr(algo, "func", algo))
    def suggest(new_ids, domain, trials, seed):
        docs = trials.trials
        if way == PENDING_STARTUP_FINISHED:
            from hyperopt import rand

            if sum(1 for doc in docs if finished(doc)) < startup_jobs(algo):
                return rand.suggest(new_ids, domain, trials, seed)
            return algo(new_ids, domain, trials, seed)
        return algo(new_ids, domain, ShownTrials(trials, shown_trials(docs, way)), seed)

    return suggest
