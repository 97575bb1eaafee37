"""The parallelism decision, fed with plain numbers (no Spark)."""

import pytest

from runtime_ml.driver.cluster import (
    master_kind,
    potential_slots,
    profile_slots_from_cores,
    slots_from_conf,
)
from runtime_ml.driver.parallelism import SlotFacts, decide_parallelism
from runtime_ml.driver.placement import slots_per_executor
from runtime_ml.errors import UserInputTypeError

TPE, RAND = "hyperopt.tpe", "hyperopt.rand"


def warnings_of(decision):
    return [r.text for r in decision.reasons if r.level == "warning"]


@pytest.mark.parametrize(
    "requested, max_evals, algo, facts, expected, warned_about",
    [
        # default = the cluster's slots; a value <= 0 means the default too, with a warning
        (None, 64, TPE, SlotFacts(slots=8, slots_source="x"), 8, []),
        (0, 64, TPE, SlotFacts(slots=8, slots_source="x"), 8, ["parallelism=0 is not a positive"]),
        (-2, 64, TPE, SlotFacts(slots=8, slots_source="x"), 8, ["parallelism=-2", "N >= 1"]),
        # a request within the slots is kept as is
        (4, 64, TPE, SlotFacts(slots=8), 4, []),
        (4.0, 64, TPE, SlotFacts(slots=8), 4, []),
        # clamp to the slots, and say how to fix it
        (16, 64, TPE, SlotFacts(slots=2, slots_source="registered executors"), 2,
         ["parallelism=16 is more than the cluster can run at once", "spark.task.cpus"]),
        # clamp to 128
        (500, 1000, TPE, SlotFacts(slots=1000), 128, ["capped at 128"]),
        (None, 1000, TPE, SlotFacts(slots=300), 128, ["capped at 128"]),
        # unknown slots: keep the request, or fall back to Spark's default parallelism; say why
        (6, 64, TPE, SlotFacts(slots=None, slots_source="nothing registered"), 6,
         ["task slots are unknown (nothing registered); keeping parallelism=6"]),
        (None, 64, TPE, SlotFacts(slots=None, fallback_parallelism=3), 3,
         ["defaults to Spark's default parallelism (3)"]),
        (None, 64, TPE, SlotFacts(slots=None, fallback_parallelism=None), 1,
         ["defaults to Spark's default parallelism (1)"]),
        # never more than max_evals (hyperopt issue 858), and say that it is random search
        (8, 4, RAND, SlotFacts(slots=8), 4, ["more than max_evals=4", "issue 858"]),
        (8, 8, TPE, SlotFacts(slots=8), 8, ["this is random search", "SparkTrials(parallelism=3)"]),
        (8, 8, RAND, SlotFacts(slots=8), 8, []),
        (1, 1, TPE, SlotFacts(slots=8), 1, []),
        # dynamic allocation: size for the potential slots, and warn that it is fixed at start
        (None, 64, TPE, SlotFacts(slots=None, dynamic_allocation=True, potential_slots=12), 12,
         ["dynamic allocation is on", "spark.dynamicAllocation.minExecutors"]),
        (20, 64, TPE, SlotFacts(slots=2, dynamic_allocation=True, potential_slots=12), 12,
         ["more than the cluster can run at once: 12 potential task slots",
          "dynamic allocation is on"]),
        # GPUs: limited by GPUs, compared with the CPU slots
        (None, 64, TPE, SlotFacts(slots=2, gpu_task_amount=1.0, cpu_slots=4), 2,
         ["GPU scheduling is on", "2 GPU slots vs 4 CPU slots", "CPU-only cluster"]),
    ],
)
def test_decision_table(requested, max_evals, algo, facts, expected, warned_about):
    decision = decide_parallelism(requested, max_evals, algo, facts)
    assert decision.parallelism == expected
    text = " | ".join(warnings_of(decision))
    for fragment in warned_about:
        assert fragment in text
    if not warned_about:
        assert warnings_of(decision) == []


def test_every_change_has_exactly_one_warning_each():
    decision = decide_parallelism(16, 16, TPE, SlotFacts(slots=2, dynamic_allocation=False))
    assert decision.parallelism == 2
    assert len(warnings_of(decision)) == 1


@pytest.mark.parametrize("bad", ["4", [2]])
def test_parallelism_that_is_not_a_number_raises_hyperopts_type_error_with_the_fix(bad):
    with pytest.raises(UserInputTypeError) as error:
        decide_parallelism(bad, 10, TPE, SlotFacts(slots=2))
    assert isinstance(error.value, TypeError)
    assert str(error.value).startswith("'<=' not supported between instances of")
    assert f"parallelism={bad!r}" in str(error.value)
    assert "SparkTrials(parallelism=4)" in str(error.value)


@pytest.mark.parametrize("odd, used, said", [
    (2.5, 3, "hyperopt runs up to 3 trials at once with it, so parallelism is 3"),
    (True, 1, "hyperopt runs one trial at a time with it, so parallelism is 1"),
    (float("nan"), 8, "the default is used instead"),
])
def test_a_parallelism_hyperopt_accepts_oddly_is_what_it_amounts_to_with_a_warning(odd, used,
                                                                                   said):
    decision = decide_parallelism(odd, 10, "hyperopt.rand", SlotFacts(slots=8))
    assert decision.parallelism == used
    [warning] = warnings_of(decision)
    assert f"parallelism={odd!r}" in warning and said in warning


@pytest.mark.parametrize(
    "master, kind",
    [("local", "local"), ("local[4]", "local"), ("local[*]", "local"), ("local[2,3]", "local"),
     ("local-cluster[2,2,1024]", "local-cluster"), ("spark://127.0.0.1:7077", "standalone"),
     ("yarn", "yarn"), ("k8s://https://host:6443", "k8s"), ("sc://localhost:15002", "spark-connect"),
     ("weird", "unknown")],
)
def test_master_kind(master, kind):
    assert master_kind(master) == kind


def test_slots_per_executor_counts_cores_per_task_and_gpus():
    assert slots_per_executor(4, 1) == 4
    assert slots_per_executor(4, 2) == 2
    assert slots_per_executor(3, 2) == 1
    assert slots_per_executor(4, 1, executor_gpus=2, task_gpus=1) == 2
    assert slots_per_executor(4, 1, executor_gpus=1, task_gpus=0.5) == 2
    assert slots_per_executor(4, 1, executor_gpus=1, task_gpus=2) == 0
    assert slots_per_executor(None, 1) is None


def test_slots_from_conf_for_each_master():
    assert slots_from_conf("local[4]", None, None, 1, None, None) == 4
    assert slots_from_conf("local[4]", None, None, 2, None, None) == 2
    assert slots_from_conf("local[*]", None, None, 1, None, None, cpu_count=6) == 6
    assert slots_from_conf("local-cluster[2,2,1024]", None, None, 2, None, None) == 2
    assert slots_from_conf("local-cluster[1,4,1024]", None, None, 1, 2, 1) == 2
    assert slots_from_conf("spark://h:7077", 3, 4, 1, None, None) == 12
    assert slots_from_conf("spark://h:7077", None, 4, 1, None, None) is None
    assert slots_from_conf("spark://h:7077", None, None, 1, None, None, cores_max=2) == 2
    assert slots_from_conf("spark://h:7077", None, 2, 1, 1, 1, cores_max=8) == 4


def test_potential_slots_under_dynamic_allocation():
    assert potential_slots(5, 4, 1, None, None) == 20
    assert potential_slots(5, 4, 1, 1, 1) == 5
    assert potential_slots(None, 4, 1, None, None) is None
    assert potential_slots(5, None, 1, None, None) is None


def test_a_resource_profiles_slots_count_its_cpus_per_task_on_each_executor():
    assert profile_slots_from_cores([4, 4], 2) == 4
    assert profile_slots_from_cores([3, 1], 2) == 1
    assert profile_slots_from_cores([], 2) is None
    assert profile_slots_from_cores([4], None) is None
