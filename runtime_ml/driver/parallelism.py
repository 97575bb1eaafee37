"""How many trials a SparkTrials fmin runs at once: a pure decision over plain values.

Fed with numbers (the user's request, max_evals, the algorithm's name and the cluster's slots), it
returns the parallelism and the reasons behind every change, as hyperopt's `_decide_parallelism` does
but with the cluster's real task slots in view.
"""

import math
from dataclasses import dataclass, field
from typing import Optional

from runtime_ml.errors import UserInputTypeError, with_advice

MAX_CONCURRENT_TRIALS = 128  # hyperopt's SparkTrials.MAX_CONCURRENT_JOBS_ALLOWED
# Algorithms that learn from finished trials; running max_evals of them at once wastes that.
ADAPTIVE_ALGOS = frozenset({"hyperopt.tpe", "hyperopt.atpe", "hyperopt.anneal"})


@dataclass(frozen=True)
class Reason:
    level: str  # "info" or "warning"
    text: str


@dataclass(frozen=True)
class SlotFacts:
    """What the decision needs to know about the cluster (see cluster.ClusterFacts.slot_facts)."""

    slots: Optional[int] = None  # concurrent task slots now; None when unknown
    slots_source: str = "unknown"
    dynamic_allocation: bool = False
    potential_slots: Optional[int] = None  # under dynamic allocation: maxExecutors x slots per executor
    gpu_task_amount: Optional[float] = None  # spark.task.resource.gpu.amount, when GPUs are scheduled
    cpu_slots: Optional[int] = None  # slots counting cores only (to compare with the GPU-limited slots)
    fallback_parallelism: Optional[int] = None  # what stock hyperopt would use (sc.defaultParallelism)


@dataclass
class Decision:
    parallelism: int
    requested: object
    reasons: list = field(default_factory=list)

    def warn(self, text: str) -> None:
        self.reasons.append(Reason("warning", text))

    def info(self, text: str) -> None:
        self.reasons.append(Reason("info", text))


PARALLELISM_ADVICE = ("parallelism must be a whole number of concurrent trials, e.g. "
                      "SparkTrials(parallelism=4), or None for the cluster's task slots")


def normalize_request(requested):
    """hyperopt's reading of SparkTrials(parallelism=...), as (value, note).

    Whatever hyperopt accepts is accepted: None and values <= 0 mean "the default" (value None);
    numpy integers are whole numbers; a value hyperopt would use oddly (2.5 runs up to 3 trials at
    once, True runs 1, NaN never limits) is replaced by what it amounts to, or by the default for
    NaN, and `note` says so. What hyperopt cannot compare with 0 raises hyperopt's TypeError
    (as UserInputTypeError, hyperopt's message first, then the fix).
    """
    if requested is None:
        return None, None
    if isinstance(requested, bool):
        if not requested:
            return None, None
        return 1, (f"parallelism={requested!r} is a bool; hyperopt runs one trial at a time with it, "
                   "so parallelism is 1. Pass SparkTrials(parallelism=1).")
    try:
        nonpositive = requested <= 0
        number = float(requested)
    except (TypeError, ValueError) as error:
        stock = str(error) if isinstance(error, TypeError) else f"could not convert {requested!r}"
        raise UserInputTypeError(with_advice(
            stock, f"SparkTrials(parallelism={requested!r}): {PARALLELISM_ADVICE}.")) from None
    if math.isnan(number):
        return None, (f"parallelism={requested!r} is not a number, which would never limit how many "
                      "trials run at once; the default is used instead. "
                      f"Pass SparkTrials(parallelism=N) with N >= 1.")
    if nonpositive:
        return None, None
    if math.isinf(number):
        return number, None  # capped by the decision, as hyperopt caps it
    whole = math.ceil(number)
    if whole != number:
        return whole, (f"parallelism={requested!r} is not a whole number; hyperopt runs up to "
                       f"{whole} trials at once with it, so parallelism is {whole}. Pass "
                       f"SparkTrials(parallelism={whole}).")
    return whole, None


def decide_parallelism(requested: object, max_evals: Optional[int], algo_name: str,
                       facts: SlotFacts, cap: int = MAX_CONCURRENT_TRIALS) -> Decision:
    request, note = normalize_request(requested)
    decision = Decision(parallelism=1, requested=requested)
    if note:
        decision.warn(note)

    # Under dynamic allocation, executors come and go: size for what the cluster may grow to.
    usable = facts.slots
    usable_name = f"{facts.slots} concurrent task slots ({facts.slots_source})"
    if facts.dynamic_allocation and facts.potential_slots:
        usable = facts.potential_slots
        usable_name = (
            f"{facts.potential_slots} potential task slots under dynamic allocation "
            "(spark.dynamicAllocation.maxExecutors x slots per executor)"
        )

    if request is None:
        if usable:
            chosen = usable
            decision.info(f"parallelism defaults to the cluster's {usable_name}")
        else:
            chosen = facts.fallback_parallelism or 1
            decision.warn(
                f"the cluster's task slots are unknown ({facts.slots_source}); parallelism "
                f"defaults to Spark's default parallelism ({chosen}). Pass "
                "SparkTrials(parallelism=N) to choose it."
            )
        if requested is not None and note is None:  # 0 or negative: hyperopt's "use the default"
            decision.warn(
                f"parallelism={requested!r} is not a positive number of trials, so the default "
                f"({chosen}) is used. Pass SparkTrials(parallelism=N) with N >= 1, or leave it "
                "unset for the cluster's task slots."
            )
    else:
        chosen = request
        if usable and request > usable:
            chosen = usable
            decision.warn(
                f"parallelism={request} is more than the cluster can run at once: {usable_name}; "
                f"using {usable}. To run more trials at once add executors or cores, lower "
                "spark.task.cpus (or spark.task.resource.gpu.amount), or pass "
                f"SparkTrials(parallelism={usable}) to silence this."
            )
        elif not usable:
            decision.warn(
                f"the cluster's task slots are unknown ({facts.slots_source}); keeping "
                f"parallelism={request} as requested."
            )

    if chosen > cap:
        decision.warn(
            f"parallelism {chosen} is capped at {cap}, the most concurrent trials SparkTrials "
            f"runs; pass SparkTrials(parallelism={cap}) or less."
        )
        chosen = cap

    if max_evals is not None and 0 < max_evals < chosen:
        decision.warn(
            f"parallelism {chosen} is more than max_evals={max_evals}: no more than {max_evals} "
            f"trials can run, so parallelism is {max_evals} (see hyperopt issue 858)."
        )
        chosen = max_evals
    chosen = max(1, chosen)

    if (
        algo_name in ADAPTIVE_ALGOS
        and max_evals is not None
        and max_evals > 1
        and chosen >= max_evals
    ):
        suggestion = max(1, round(math.sqrt(max_evals)))
        decision.warn(
            f"parallelism {chosen} equals max_evals={max_evals}: every trial starts before any "
            f"finishes, so {algo_name} cannot learn and this is random search. Pass about "
            f"sqrt(max_evals), SparkTrials(parallelism={suggestion}), for adaptive search."
        )

    if facts.dynamic_allocation:
        decision.warn(
            f"dynamic allocation is on (spark.dynamicAllocation.enabled=true): parallelism is fixed "
            f"at {chosen} when fmin starts, and executors added later will not run more trials of "
            "this fmin. For tuning, use a fixed-size cluster or set spark.dynamicAllocation."
            "minExecutors to the size you need."
        )

    if facts.gpu_task_amount:
        cpu_note = f" vs {facts.cpu_slots} CPU slots" if facts.cpu_slots is not None else ""
        decision.warn(
            f"GPU scheduling is on (spark.task.resource.gpu.amount={facts.gpu_task_amount:g}): "
            f"concurrent trials are limited by GPUs ({facts.slots} GPU slots{cpu_note}). For "
            "models that do not use a GPU, a CPU-only cluster runs more trials at once."
        )

    decision.parallelism = chosen
    return decision
