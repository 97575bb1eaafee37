"""When hyperopt's algorithm is asked for a trial: runtime-ml's proposal policy, in plain functions.

hyperopt's own loop (driver/hyperopt_loop.py) asks these while the dispatcher launches trials on
Spark; benchmarks/search_quality.py asks the same functions on a simulated clock, so the
benchmark measures the code users run. Nothing here touches Spark or threads.

When: at parallelism 1 a trial is proposed once the previous trial's result is in, so the search
is hyperopt's sequential one, trial for trial (Spark conf
spark.runtimeml.hyperopt.sequentialAtParallelismOne, on by default). Otherwise one trial is kept
proposed ahead of a free slot, as stock SparkTrials does: it is proposed while the trials before
it run. Proposing when a slot frees above parallelism 1 too (queue_length without `ahead`, as at
parallelism 1: one more result, one fewer unfinished trial) was not better in the benchmark
(benchmarks/README.md, "Parallel search").

What the algorithm is shown of unfinished trials stays hyperopt's (TPE counts a trial with no loss
yet toward its random start-up and as a bad trial): the ways the best parallel samplers handle
them, measured by the same benchmark, were none of them better.
"""


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
