"""Facts about the Spark cluster a SparkSession runs on: master, executors, slots, GPUs, autoscaling.

`read_cluster_facts(spark)` is the only function here that talks to Spark; everything it computes
from what it read is a pure function of plain values (`facts_from`), tested with numbers. A classic
session adds what the driver's JVM knows (registered executors, Spark's own slot count); a Spark
Connect session offers only its conf, so there the slots come from the conf alone.
"""

import os
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

from runtime_ml import log
from runtime_ml.compat import spark_private
from runtime_ml.driver.parallelism import SlotFacts
from runtime_ml.driver.placement import ExecutorSlot, slots_per_executor
from runtime_ml.driver.session import conf_get, is_connect

logger = log.logger()

EXECUTOR_WAIT_SECONDS = 30.0  # at most, for executors still registering when fmin starts

_LOCAL = re.compile(r"^local(?:\[(\*|\d+)(?:\s*,\s*\d+)?\])?$")
_LOCAL_CLUSTER = re.compile(r"^local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]$")


def _local_cluster(master: str) -> "re.Match[str]":
    """The parts of a master that master_kind called local-cluster."""
    match = _LOCAL_CLUSTER.match(master.strip())
    if match is None:
        raise ValueError(f"not a local-cluster master: {master!r}")
    return match


@dataclass
class Executor:
    id: str
    host_port: str
    cores: int
    gpus: list = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.host_port.rsplit(":", 1)[0]


@dataclass
class ClusterFacts:
    master: str
    master_kind: str
    spark_version: str
    default_parallelism: int
    executors: list
    task_cpus: int
    executor_cores: Optional[int]  # spark.executor.cores, or what the executors have, or None
    executor_gpus: float  # spark.executor.resource.gpu.amount
    task_gpus: float  # spark.task.resource.gpu.amount
    dynamic_allocation: bool
    min_executors: int
    max_executors: Optional[int]  # None when unbounded
    initial_executors: int
    slots: Optional[int]  # concurrent task slots now, or None when unknown
    slots_source: str
    cpu_slots: Optional[int]  # the same, counting cores only
    potential_slots: Optional[int]  # under dynamic allocation, None otherwise or when unbounded
    notes: list = field(default_factory=list)
    conf_only: bool = False  # read over Spark Connect: no executor list to wait for

    def slot_facts(self) -> SlotFacts:
        return SlotFacts(
            slots=self.slots,
            slots_source=self.slots_source,
            dynamic_allocation=self.dynamic_allocation,
            potential_slots=self.potential_slots,
            gpu_task_amount=self.task_gpus,
            cpu_slots=self.cpu_slots,
            fallback_parallelism=self.default_parallelism,
        )

    @property
    def executors_pending(self) -> bool:
        """Executors the conf promises (or any, for a cluster) have not all registered yet."""
        if self.dynamic_allocation or self.master_kind == "local" or self.conf_only:
            return False
        if self.slots is None or self.slots_source.startswith("from the conf"):
            return True
        # The executor list (Spark's status store, fed by the listener bus) trails the scheduler
        # that counted the slots by a moment: wait until it lists the cores those slots need.
        listed_cores = sum(e.cores for e in self.executors)
        return 0 < listed_cores < self.slots * self.task_cpus

    @property
    def executor_hosts(self) -> FrozenSet[str]:
        """The hosts the registered executors run on (the driver's row of local mode left out)."""
        return frozenset(e.host for e in self.executors if e.id != "driver")

    @property
    def more_executors_may_come(self) -> bool:
        """Executors not registered yet, or added later by dynamic allocation, may run on other
        hosts (never on a local or local-cluster master)."""
        return self.master_kind not in ("local", "local-cluster") and (
            self.dynamic_allocation or not self.executors)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def for_profile(self, slots: Optional[int], source: str) -> "ClusterFacts":
        """The same facts, with the slots of the trials' ResourceProfile."""
        return replace(self, slots=slots, slots_source=source, cpu_slots=None)


# ---------------------------------------------------------------- pure helpers


def master_kind(master: Optional[str]) -> str:
    master = (master or "").strip()
    if _LOCAL.match(master):
        return "local"
    if _LOCAL_CLUSTER.match(master):
        return "local-cluster"
    for prefix, kind in (("spark://", "standalone"), ("yarn", "yarn"), ("k8s://", "k8s"),
                         ("sc://", "spark-connect"), ("mesos://", "mesos")):
        if master.startswith(prefix):
            return kind
    return "unknown"


def local_cores(master, cpu_count=None):
    """Worker threads of a local[N] / local[*] master (local = 1)."""
    match = _LOCAL.match((master or "").strip())
    if not match:
        return None
    if match.group(1) is None:
        return 1
    if match.group(1) == "*":
        return cpu_count or os.cpu_count() or 1
    return int(match.group(1))


def slots_from_conf(master, executor_instances, executor_cores, task_cpus, executor_gpus,
                    task_gpus, cpu_count=None, cores_max=None):
    """The slots the conf promises, for when executors have not registered (yet)."""
    kind = master_kind(master)
    if kind == "local":
        return local_cores(master, cpu_count) // max(1, task_cpus)  # local mode has no GPU slots
    if kind == "local-cluster":
        count, cores, _memory = map(int, _local_cluster(master).groups())
        return count * slots_per_executor(cores, task_cpus, executor_gpus, task_gpus)
    if executor_instances and executor_cores:
        return executor_instances * slots_per_executor(executor_cores, task_cpus, executor_gpus,
                                                       task_gpus)
    if cores_max:  # standalone: spark.cores.max caps the application's cores
        if executor_cores:
            return (cores_max // executor_cores) * slots_per_executor(
                executor_cores, task_cpus, executor_gpus, task_gpus)
        return cores_max // max(1, task_cpus)
    return None


def potential_slots(max_executors: Optional[int], executor_cores: Optional[int], task_cpus: int,
                    executor_gpus: Optional[float], task_gpus: Optional[float]) -> Optional[int]:
    if not max_executors or executor_cores is None:
        return None
    return max_executors * slots_per_executor(executor_cores, task_cpus, executor_gpus, task_gpus)


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value, default=None):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _bool(value):
    return str(value).strip().lower() == "true"


def profile_slots_from_cores(executor_cores, profile_task_cpus):
    """Concurrent tasks of a ResourceProfile asking `profile_task_cpus` per task, on executors
    with these cores (None when nothing is known)."""
    if not executor_cores or not profile_task_cpus:
        return None
    return sum(int(cores // profile_task_cpus) for cores in executor_cores)


# ---------------------------------------------------------------- reading Spark


def read_profile_slots(spark: Any, facts: "ClusterFacts", profile: Any) -> Tuple[int, str]:
    """(slots, source) for the trials' ResourceProfile (SparkTrials(resource_profile=...)).

    Spark's own count for that profile (maxNumConcurrentTasks, private, as for the default
    profile), else its task cpus against the executors' cores.
    """
    name = f"resource profile {getattr(profile, 'id', '?')}"
    try:
        if is_connect(spark):
            raise RuntimeError("Spark Connect has no slot count")
        jvm_context = spark_private.jvm_spark_context(spark.sparkContext)
        return spark_private.max_concurrent_tasks(jvm_context, spark.version, profile), \
            f"{name}, registered executors"
    except Exception as error:
        cpus = getattr((profile.taskResources or {}).get("cpus"), "amount", None)
        slots = profile_slots_from_cores([e.cores for e in facts.executors], cpus)
        return slots, (f"{name}, {cpus} cpus per task (maxNumConcurrentTasks unavailable: "
                       f"{type(error).__name__})")


def read_cluster_facts(spark: Any, wait_seconds: float = 0.0) -> "ClusterFacts":
    """Read the facts from a live SparkSession (never creates one).

    Executors register seconds after a session starts: with `wait_seconds`, wait (polling) until
    the promised ones are there, so the first fmin of a job sees the real cluster.
    """
    import time

    deadline = time.monotonic() + wait_seconds
    facts = _read_cluster_facts(spark)
    if facts.executors_pending and wait_seconds > 0:
        logger.info("waiting up to %.0f s for executors to register", wait_seconds)
        while facts.executors_pending and time.monotonic() < deadline:
            time.sleep(0.5)
            facts = _read_cluster_facts(spark)
    return facts


def _read_cluster_facts(spark):
    if is_connect(spark):
        return facts_from(conf_get(spark, "spark.master", ""), spark.version,
                          lambda key, default=None: conf_get(spark, key, default),
                          executors=[], jvm_slots=None, default_parallelism=None, notes=[],
                          conf_only=True)
    sc = spark.sparkContext
    conf = sc.getConf()
    notes = []
    jvm_context = spark_private.jvm_spark_context(sc)
    executors = []
    try:
        executors = [Executor(*summary) for summary in spark_private.executor_summaries(
            jvm_context, include_driver=(master_kind(sc.master) == "local"))]
    except Exception as error:  # a private API: say so, keep going with the conf
        notes.append(f"executor list unavailable ({type(error).__name__}: {error})")
    jvm_slots = None
    try:
        jvm_slots = spark_private.max_concurrent_tasks(jvm_context, sc.version)
    except Exception as error:
        notes.append(f"maxNumConcurrentTasks unavailable ({type(error).__name__}: {error}); "
                     "slots computed from the conf")
    return facts_from(sc.master, sc.version, conf.get, executors, jvm_slots,
                      sc.defaultParallelism, notes)


def executor_slots(spark: Any) -> List[ExecutorSlot]:
    """A classic session's registered executors (not local mode's driver), each with the trials
    it can run at once: what placement.choose picks from (launcher.ClassicLauncher asks every
    placement.REREAD_SECONDS). Raises when Spark's status store does not answer."""
    sc = spark.sparkContext
    get = sc.getConf().get
    task_cpus = _int(get("spark.task.cpus"), 1)
    executor_gpus = _float(get("spark.executor.resource.gpu.amount"))
    task_gpus = _float(get("spark.task.resource.gpu.amount"))
    executors = [Executor(*summary) for summary in spark_private.executor_summaries(
        spark_private.jvm_spark_context(sc), include_driver=False)]
    return [ExecutorSlot(e.id, e.host, slots_per_executor(e.cores, task_cpus, executor_gpus,
                                                         task_gpus)) for e in executors]


def facts_from(master, spark_version, get, executors, jvm_slots, default_parallelism, notes,
               conf_only=False):
    """The facts, from what was read: the conf (`get(key, default)`), the registered executors
    and Spark's own slot count (a classic session only)."""
    kind = master_kind(master)
    task_cpus = _int(get("spark.task.cpus"), 1)
    executor_gpus = _float(get("spark.executor.resource.gpu.amount"))
    task_gpus = _float(get("spark.task.resource.gpu.amount"))
    if kind == "local":
        task_gpus = executor_gpus = None  # GPU scheduling does not apply to local[N]
    dynamic = _bool(get("spark.dynamicAllocation.enabled", "false")) and kind != "local"

    executor_cores = _int(get("spark.executor.cores"))
    if executor_cores is None and executors and kind != "local":
        executor_cores = max(e.cores for e in executors)
    if kind == "local-cluster":
        executor_cores = int(_local_cluster(master).group(2))

    conf_slots = slots_from_conf(master, _int(get("spark.executor.instances")), executor_cores,
                                 task_cpus, executor_gpus, task_gpus,
                                 cores_max=_int(get("spark.cores.max")))
    if jvm_slots is not None and (conf_slots is None or jvm_slots >= conf_slots or dynamic):
        slots, source = jvm_slots, "registered executors"
        if kind == "local":
            source = f"{master}, spark.task.cpus={task_cpus}"
    elif conf_slots is not None:
        slots = conf_slots
        registered = "" if jvm_slots is None else f", {jvm_slots} registered so far"
        over = " over Spark Connect" if conf_only else ""
        source = f"from the conf{over}: {master}{registered}"
    else:
        slots, source = None, "no executors registered and none configured"
        if conf_only:
            source = ("Spark Connect shows no executors, and the conf sets neither "
                      "spark.executor.instances with spark.executor.cores nor spark.cores.max")
    if dynamic and not slots:
        slots = None
        source = "dynamic allocation: no executors registered yet"

    cpu_slots = None
    if task_gpus and executors:
        cpu_slots = sum(slots_per_executor(e.cores, task_cpus) for e in executors)
    elif task_gpus and conf_slots is not None:
        cpu_slots = slots_from_conf(master, _int(get("spark.executor.instances")), executor_cores,
                                    task_cpus, None, None)

    max_executors = _int(get("spark.dynamicAllocation.maxExecutors"))
    if max_executors is not None and max_executors >= 2**31 - 1:
        max_executors = None
    if default_parallelism is None:  # Spark Connect: the conf's, else the slots
        default_parallelism = _int(get("spark.default.parallelism")) or slots
    return ClusterFacts(
        master=master,
        master_kind=kind,
        spark_version=spark_version,
        default_parallelism=default_parallelism,
        executors=executors,
        task_cpus=task_cpus,
        executor_cores=executor_cores,
        executor_gpus=executor_gpus,
        task_gpus=task_gpus,
        dynamic_allocation=dynamic,
        min_executors=_int(get("spark.dynamicAllocation.minExecutors"), 0),
        max_executors=max_executors,
        initial_executors=_int(get("spark.dynamicAllocation.initialExecutors")),
        slots=slots,
        slots_source=source,
        cpu_slots=cpu_slots,
        potential_slots=(
            potential_slots(max_executors, executor_cores, task_cpus, executor_gpus, task_gpus)
            if dynamic else None
        ),
        notes=notes,
        conf_only=conf_only,
    )
