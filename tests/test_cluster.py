"""Cluster facts and fitted parallelism on real Spark: local[2] in-process, clusters in subprocesses."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import hyperopt
import pytest
from cluster_scenario import stacked_seconds
from hyperopt import hp, rand

from runtime_ml.compat import spark_private
from runtime_ml.driver import cluster
from runtime_ml.policy import TaskProblems
from runtime_ml.worker.isolation import TrialProcessState
from runtime_ml.worker.task import CUDA_VISIBLE_DEVICES, gpu_environment

TESTS = Path(__file__).resolve().parent
FAKE_GPUS = str(TESTS / "fake_gpus.sh")


# ------------------------------------------------------------------ local[2], in-process


def test_local_session_facts(spark):
    facts = cluster.read_cluster_facts(spark)
    assert facts.master_kind == "local"
    assert facts.slots == 2 and facts.task_cpus == 1
    assert facts.dynamic_allocation is False and facts.potential_slots is None
    assert [(e.id, e.cores) for e in facts.executors] == [("driver", 2)]
    assert facts.notes == []


def test_private_jvm_calls_still_answer_on_this_spark(spark):
    """Fails loudly when a Spark upgrade breaks the py4j calls runtime-ml relies on."""
    jvm_context = spark_private.jvm_spark_context(spark.sparkContext)
    assert spark_private.max_concurrent_tasks(jvm_context, spark.version) == 2
    assert [e.cores for e in spark_private.executor_summaries(jvm_context, True)] == [2]
    # a one-row RDD with a location preference: local mode's one executor is the driver
    rows = spark_private.one_row_preferring(spark.sparkContext, 7, "executor_127.0.0.1_driver")
    assert rows.getNumPartitions() == 1 and rows.mapPartitions(lambda it: [sum(it)]).collect() == [7]


def test_spark_without_profile_aware_slot_count_falls_back_to_conf_and_says_so(spark, monkeypatch):
    monkeypatch.setattr(type(spark.sparkContext), "version", property(lambda self: "3.0.3"))
    facts = cluster.read_cluster_facts(spark)
    assert facts.slots == 2 and facts.slots_source.startswith("from the conf")
    assert any("Spark 3.0.3 predates maxNumConcurrentTasks" in note for note in facts.notes)


def test_failing_slot_call_falls_back_and_the_fmin_warns(spark, active, runtime_log, monkeypatch):
    def broken(jvm_context, version, resource_profile=None):
        raise RuntimeError("py4j said no")

    monkeypatch.setattr(spark_private, "max_concurrent_tasks", broken)
    trials = hyperopt.SparkTrials(parallelism=8, spark_session=spark)
    hyperopt.fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2,
                  trials=trials, show_progressbar=False)
    assert trials.actual_parallelism == 2
    messages = [r.getMessage() for r in runtime_log.records if r.levelno == logging.WARNING]
    assert any("maxNumConcurrentTasks unavailable (RuntimeError: py4j said no)" in m for m in messages)
    assert any("parallelism=8 is more than the cluster can run at once" in m for m in messages)


def test_request_within_slots_is_kept_silently(spark, active, runtime_log):
    trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark)
    hyperopt.fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2,
                  trials=trials, show_progressbar=False)
    assert trials.actual_parallelism == 1 and trials.parallelism == 1
    assert [r for r in runtime_log.records if r.levelno >= logging.WARNING] == []


def test_a_fractional_parallelism_made_before_activation_runs_with_a_warning(spark, active,
                                                                            runtime_log):
    import runtime_ml

    runtime_ml.deactivate()  # made while stock: runtime-ml sees it only at fmin
    trials = hyperopt.SparkTrials(parallelism=2.5, spark_session=spark)
    runtime_ml.activate()
    hyperopt.fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=4,
                  trials=trials, show_progressbar=False)
    assert len(trials.trials) == 4 and trials.parallelism == 2  # local[2]'s slots
    warnings = [r.getMessage() for r in runtime_log.records if r.levelno == logging.WARNING]
    assert any("parallelism=2.5 is not a whole number" in w and "parallelism is 3" in w
               for w in warnings), warnings


def test_outside_a_gpu_task_the_environment_is_untouched(monkeypatch):
    monkeypatch.setenv(CUDA_VISIBLE_DEVICES, "7")
    assert gpu_environment(TaskProblems(strict=True)) == {}
    with TrialProcessState(gpu_environment(TaskProblems(strict=True))):
        assert os.environ[CUDA_VISIBLE_DEVICES] == "7"
    assert os.environ[CUDA_VISIBLE_DEVICES] == "7"


def test_a_trials_environment_is_put_back_afterwards(monkeypatch):
    monkeypatch.setenv("RUNTIME_ML_TEST_SET", "before")
    monkeypatch.delenv("RUNTIME_ML_TEST_UNSET", raising=False)
    with TrialProcessState({"RUNTIME_ML_TEST_SET": "during", "RUNTIME_ML_TEST_UNSET": "during"}):
        assert os.environ["RUNTIME_ML_TEST_SET"] == os.environ["RUNTIME_ML_TEST_UNSET"] == "during"
    assert os.environ["RUNTIME_ML_TEST_SET"] == "before"
    assert "RUNTIME_ML_TEST_UNSET" not in os.environ


# ------------------------------------------------------------------ clusters, one per subprocess


def run_scenario(master, parallelism, max_evals, sleep, env=None, **settings):
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1", **(env or {}))
    env.pop("RUNTIME_ML_DISABLED", None)
    args = [sys.executable, str(TESTS / "cluster_scenario.py"), master, str(parallelism),
            str(max_evals), str(sleep)] + [f"{k}={v}" for k, v in settings.items()]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def messages(result, level="WARNING"):
    return [text for lvl, text in result["log"] if lvl == level]


def test_local_star_uses_every_core():
    result = run_scenario("local[*]", "None", 4, 0.2)
    assert result["actual_parallelism"] == os.cpu_count()
    assert messages(result) == []


def test_two_executors_with_two_cpus_per_task_run_two_trials_at_once():
    """The issue's acceptance case: 2 executors x 2 cores, spark.task.cpus=2, parallelism=16."""
    result = run_scenario("local-cluster[2,2,1024]", 16, 6, 1.0, **{"spark.task.cpus": "2"})
    assert result["actual_parallelism"] == 2
    assert result["trials"] == 6
    assert result["peak"] <= 2
    assert any("parallelism=16 is more than the cluster can run at once: 2 concurrent task slots"
               in m for m in messages(result))


def test_trials_are_spread_over_the_executors_where_stock_leaves_them_to_chance():
    """3 executors x 2 cores, parallelism 3: runtime-ml runs each trial on an executor of its own;
    stock's placement is recorded beside it (Spark's scheduler may stack two trials)."""
    result = run_scenario("local-cluster[3,2,1024]", 3, 6, 1.0, env={"SCENARIO_ALSO_STOCK": "1"})
    ours, stock = result["runs"], result["stock_runs"]
    assert len(ours) == len(stock) == 6
    print(f"stock: {stacked_seconds(stock, 3):.1f} s stacked, executors "
          f"{sorted(r['executor'] for r in stock)}")
    assert len({r["executor"] for r in ours}) == 3
    assert stacked_seconds(ours, 3) == 0, ours


def test_fake_gpus_limit_slots_and_each_concurrent_trial_sees_its_own_gpu():
    gpu_conf = {
        "spark.worker.resource.gpu.amount": "2",
        "spark.worker.resource.gpu.discoveryScript": FAKE_GPUS,
        "spark.executor.resource.gpu.amount": "2",
        "spark.executor.resource.gpu.discoveryScript": FAKE_GPUS,
        "spark.task.resource.gpu.amount": "1",
    }
    result = run_scenario("local-cluster[1,4,1024]", "None", 6, 1.0, **gpu_conf)
    assert result["actual_parallelism"] == 2  # 2 GPUs, although 4 cores
    assert result["peak"] <= 2
    assert {run["gpus"] for run in result["runs"]} == {"0", "1"}
    runs = sorted(result["runs"], key=lambda r: r["start"])
    for a in runs:
        for b in runs:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["gpus"] != b["gpus"], "two concurrent trials shared a GPU"
    assert any("2 GPU slots vs 4 CPU slots" in m for m in messages(result))


def test_dynamic_allocation_sizes_for_potential_slots_and_warns():
    result = run_scenario(
        "local-cluster[1,2,1024]", "None", 4, 0.2,
        **{"spark.dynamicAllocation.enabled": "true",
           "spark.dynamicAllocation.shuffleTracking.enabled": "true",
           "spark.dynamicAllocation.minExecutors": "0",
           "spark.dynamicAllocation.maxExecutors": "3",
           "spark.executor.cores": "2"},
    )
    assert result["actual_parallelism"] == 4  # max_evals bounds the 6 potential slots
    infos = messages(result, "INFO")
    assert any("6 potential task slots under dynamic allocation" in m for m in infos)
    assert any("dynamic allocation is on" in m and "spark.dynamicAllocation.minExecutors" in m
               for m in messages(result))


@pytest.mark.parametrize("listed_cores, pending", [([2], True), ([2, 2], False), ([], False)])
def test_facts_wait_while_the_executor_list_trails_the_scheduler(listed_cores, pending):
    # The scheduler already counts 2 slots of 2 cpus each; Spark's status store may list the
    # executors a moment later. An empty list means the list is unavailable: nothing to wait for.
    facts = cluster.ClusterFacts(
        master="local-cluster[2,2,1024]", master_kind="local-cluster", spark_version="4.3.0",
        default_parallelism=4, executors=[cluster.Executor(str(i), "127.0.0.1", c)
                                          for i, c in enumerate(listed_cores)],
        task_cpus=2, executor_cores=2, executor_gpus=None, task_gpus=None,
        dynamic_allocation=False, min_executors=None, max_executors=None, initial_executors=None,
        slots=2, slots_source="registered executors", cpu_slots=None, potential_slots=None)
    assert facts.executors_pending is pending
