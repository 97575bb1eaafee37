"""How trials reach the cluster: the one place the dispatcher touches Spark.

A launcher ships the objective once per fmin, gives the launcher threads what their jobs need,
runs one trial's task as a one-task Spark job, and cancels the fmin's jobs:
- `ClassicLauncher`, through the session's SparkContext, as hyperopt's SparkTrials does: in the
  caller's job group when it set one (else a group of the fmin's own), with the trials' resource
  profile, cancelled by cancelling that group; with more than one executor, each trial's job
  prefers the executor running the fewest of the fmin's trials (placement.py); the objective
  travels as a broadcast (on a `local` master, whose workers share the driver's disk, as a file:
  a broadcast would also chunk and compress it in the JVM, 0.15-0.3 s for 90 MB here).
- `ConnectLauncher`, for a Spark Connect session (no SparkContext, RDDs, job groups or broadcasts):
  a DataFrame job, `mapInArrow(...)` over one row, under an operation tag of the
  fmin's own (and the caller's tags, so interrupting those cancels the trials too), cancelled with
  `interruptTag`; the objective travels as a session artifact, a file every executor reads once.
  Connect's public API has no way to prefer an executor for a DataFrame job: Spark's scheduler
  places each trial.
"""

import functools
import os
import pickle
import shutil
import tempfile
import uuid
from typing import Any, Callable, List, Optional

from runtime_ml.compat import spark_private, versions
from runtime_ml.driver import stock_log
from runtime_ml.driver.placement import ExecutorSlot, Spreader, location
from runtime_ml.policy import report_internal_error
from runtime_ml.worker.shipped import ArtifactObjective, FileObjective
from runtime_ml.worker.task import OUTPUT_COLUMN, ArrowTrialTask, TrialTask

JOB_GROUP_PREFIX = "Hyperopt_SparkTrials_"


def callers_job_group(get_local_property):
    """(group, description, interrupt_on_cancel) for the trials' jobs, as hyperopt decides them.

    The caller's job group when it set one (notebook servers, Livy and Zeppelin set one per
    statement, so cancelling the statement cancels the trials), else a group of the fmin's own.
    """
    group = get_local_property("spark.jobGroup.id")
    description = get_local_property("spark.job.description")
    interrupt = get_local_property("spark.job.interruptOnCancel")
    if group is None:
        # runtime-ml's own group interrupts the task on cancel, so a timeout stops trials at once
        return JOB_GROUP_PREFIX + uuid.uuid4().hex[:12], (
            description or stock_log.DEFAULT_JOB_DESCRIPTION), True
    return group, description or stock_log.DEFAULT_JOB_DESCRIPTION, (interrupt or "").lower() == \
        "true"


class ShippedObjective:
    """The objective's pickled bytes, wrapped so that unpickling the wrapper gives the objective.

    PySpark pickles a broadcast's value with plain pickle, which cannot pickle most objectives
    (closures, lambdas); the bytes cloudpickle made once per fmin go through it unchanged, and the
    worker's broadcast value is then the objective itself (one copy per worker, not bytes and
    objective).
    """

    def __init__(self, payload):
        self.payload = payload

    def __reduce__(self):
        return pickle.loads, (self.payload,)


class ClassicLauncher:
    """Trials as one-task jobs on a classic (py4j) SparkSession."""

    def __init__(self, spark, resource_profile=None, job_cancelling=True,
                 read_executors: Optional[Callable[[Any], List[ExecutorSlot]]] = None):
        """`read_executors(spark)`: the executors to spread the trials over (cluster.executor_slots),
        or None to leave placement to Spark's scheduler."""
        self.spark = spark
        self.sc = spark.sparkContext
        self.resource_profile = resource_profile
        self.job_cancelling = job_cancelling
        self.job_group, self.job_description, self.interrupt_on_cancel = callers_job_group(
            self.sc.getLocalProperty)
        self._broadcast = None
        self._directory = None
        self._one_row: Any = None
        master = self.sc.master
        self._local = master == "local" or master.startswith("local[")
        # Spread over executors: not on a local master (one executor) nor with a resource
        # profile (its trials run on executors of their own, which Spark asks for).
        self._spreader = Spreader(functools.partial(self._executors, read_executors)) if (
            read_executors is not None and not self._local and resource_profile is None) else None
        self._rows_on: dict = {}  # executor location -> the one-row RDD that prefers it

    def ship(self, payload: bytes) -> Any:
        """Send the pickled objective to the executors once; returns the handle a TrialTask
        carries (its `.value` on the executor is the objective)."""
        if self._local:  # one JVM, the driver's disk
            self._directory, path = write_temporary(payload, "objective.pkl")
            handle = FileObjective(path)
        else:
            handle = self._broadcast = self.sc.broadcast(ShippedObjective(payload))
        # Every trial's job maps this one-row RDD: parallelize() per trial would ship the row to
        # the JVM again each time (a temp file and several py4j calls).
        self._one_row = self.sc.parallelize([0], 1)
        if self.resource_profile is not None:  # as hyperopt: the trials' tasks use the profile
            self._one_row = self._one_row.withResources(self.resource_profile)
        return handle

    def thread_target(self, target: Callable[[], None]) -> Callable[[], None]:
        """`target` for a launcher thread: it carries the caller's Spark local properties
        (scheduler pool, tags) and runs its jobs in the trials' job group."""

        def launching():
            if self.job_cancelling:
                self.sc.setLocalProperty("spark.jobGroup.id", self.job_group)
                self.sc.setLocalProperty("spark.job.description", self.job_description)
                self.sc.setLocalProperty("spark.job.interruptOnCancel",
                                         str(self.interrupt_on_cancel).lower())
            target()

        return inheriting(self.spark, launching)

    def run(self, task: TrialTask) -> Any:
        """Run one trial's task as a Spark job; returns what the task yielded. Raises what ended
        the job (a cancellation, a lost executor)."""
        spreader = self._spreader
        executor = spreader.take() if spreader is not None else None
        try:
            return self._row_on(executor).mapPartitions(task).collect()[0]
        finally:
            if spreader is not None:
                spreader.give_back(executor)

    def _row_on(self, executor):
        """The one-row RDD whose task prefers `executor` (None: no preference)."""
        if executor is None:
            return self._one_row
        where = location(executor)
        rows = self._rows_on.get(where)
        if rows is None:
            try:
                rows = spark_private.one_row_preferring(self.sc, 0, where)
            except Exception:
                report_internal_error("asking Spark to place a trial on an executor",
                                      "Spark's scheduler places this fmin's trials")
                self._spreader = None
                return self._one_row
            self._rows_on[where] = rows
        return rows

    def _executors(self, read_executors):
        """The executors to place trials on ([] when Spark's status store does not answer: no
        preference)."""
        try:
            return read_executors(self.spark)
        except Exception:
            report_internal_error("reading the executors to place trials on",
                                  "Spark's scheduler places the trials")
            return []

    def cancel(self) -> None:
        self.sc.cancelJobGroup(self.job_group)

    def close(self) -> None:
        """Free the objective's broadcast on the driver and the executors, or remove its file."""
        broadcast, self._broadcast = self._broadcast, None
        if broadcast is not None:
            broadcast.destroy()
        self._directory = remove_temporary(self._directory)


def write_temporary(payload, name):
    """(directory, path): `payload` written as the file `name` in a new temporary directory."""
    directory = tempfile.mkdtemp(prefix="runtime-ml-")
    path = os.path.join(directory, name)
    with open(path, "wb") as out:
        out.write(payload)
    return directory, path


def remove_temporary(directory):
    """Remove a directory write_temporary made (None: nothing); returns None."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def inheriting(spark, target):
    """`target`, run in a new thread with the calling thread's Spark local properties (classic:
    scheduler pool, job group) or operation tags (Connect)."""
    try:
        import pyspark
        from pyspark import inheritable_thread_target
    except ImportError:
        return target
    if versions.thread_target_takes_session(pyspark.__version__):
        return inheritable_thread_target(spark)(target)
    return inheritable_thread_target(target)


TAG_PREFIX = "runtime-ml-hyperopt-"
ARTIFACT_PREFIX = "runtime-ml-objective-"


def output_schema() -> Any:
    """The schema of a trial's job over Spark Connect: one binary column, ArrowTrialTask's."""
    from pyspark.sql.types import BinaryType, StructField, StructType

    return StructType([StructField(OUTPUT_COLUMN, BinaryType())])


class ConnectLauncher:
    """Trials as one-task DataFrame jobs on a Spark Connect session."""

    def __init__(self, spark, resource_profile=None):
        self.spark = spark
        self.resource_profile = resource_profile
        self.tag = TAG_PREFIX + uuid.uuid4().hex[:12]
        # What hyperopt's lines call the job group: here the fmin's operation tag.
        self.job_group = self.tag
        self.job_description = stock_log.DEFAULT_JOB_DESCRIPTION
        self.interrupt_on_cancel = True
        self._directory = None
        self._one_row = None  # (the trials' input frame, their output schema), made once: see run

    def ship(self, payload: bytes) -> Any:
        """Add the pickled objective to the session as a file artifact (Connect has no broadcast)."""
        name = ARTIFACT_PREFIX + self.tag[len(TAG_PREFIX):] + ".pkl"
        self._directory, path = write_temporary(payload, name)
        self.spark.addArtifacts(path, file=True)
        return ArtifactObjective(name)

    def thread_target(self, target: Callable[[], None]) -> Callable[[], None]:
        def launching():
            self.spark.addTag(self.tag)
            try:
                target()
            finally:
                self.spark.removeTag(self.tag)

        return inheriting(self.spark, launching)

    def run(self, task: TrialTask) -> Any:
        """One request to the server where the public API allows it (benchmarks/README.md,
        "Spark Connect at its floor"): the input frame is made once, so PySpark 4 asks the server
        for its columns once per fmin (PySpark 3.5 asks each time); the output's schema is a
        StructType, which needs no parsing on the server; the row comes back as an Arrow table
        (PySpark 4's toArrow; `collect` before), without the conversion to Rows."""
        if self._one_row is None:  # two first trials may both make them: the same plan
            self._one_row = self.spark.range(1, numPartitions=1), output_schema()
        one_row, schema = self._one_row
        options = {"profile": self.resource_profile} if self.resource_profile is not None else {}
        frame = one_row.mapInArrow(ArrowTrialTask(task), schema, **options)
        if hasattr(frame, "toArrow"):
            return pickle.loads(frame.toArrow().column(0)[0].as_py())
        return pickle.loads(frame.collect()[0][0])

    def cancel(self) -> None:
        self.spark.interruptTag(self.tag)

    def close(self) -> None:
        """Remove the local copy of the objective's file (Connect keeps session artifacts until
        the session ends)."""
        self._directory = remove_temporary(self._directory)
