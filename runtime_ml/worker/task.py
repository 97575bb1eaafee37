"""The function each trial's one-task Spark job runs on an executor, and nothing heavy.

A trial's task brings the trial's parameter values (evaluated from the search space on the
driver), its environment, and a handle to the objective, which travels once per fmin (shipped.py).
So the Python worker imports what the objective imports, and hyperopt, numpy or mlflow only when
the objective does (or in the rare cases of `SpaceOnExecutor`). This module imports only the
standard library and runtime-ml's light modules.

Nothing here may change what the objective computes: failures of runtime-ml's own steps are
reported (policy.TaskProblems: a warning in the worker's log and, under strict mode, which the task
carries from the driver, an error that travels back with the outcome) and the objective still runs
exactly once.
"""

import pickle
import sys
import traceback
from typing import Any, Callable, Dict

from runtime_ml.policy import TaskProblems
from runtime_ml.trial.outcome import TaskOutput, TrialFailure
from runtime_ml.trial.results import with_result_hint
from runtime_ml.worker import trial_run
from runtime_ml.worker.isolation import TrialProcessState, freeze_worker_heap_once
from runtime_ml.worker.output import PrintedOutput

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


def task_gpu_addresses():
    """The GPU addresses Spark assigned to the current task ([] outside a task or without GPUs)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return []
    gpu = (context.resources() or {}).get("gpu")
    return list(gpu.addresses) if gpu is not None else []


def attempt_environment(env: Dict[str, str], problems: TaskProblems) -> Dict[str, str]:
    """When Spark runs this trial's task again (its first executor was lost), the attempt's number
    for a trial with a run to find: the objective's MLflow calls then land in a run of this attempt
    nested in the trial's run, not beside what the lost attempt logged (trial_run)."""
    if trial_run.TRIAL_RUN_KEY not in env:
        return {}
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
        attempt = context.attemptNumber() if context is not None else 0
    except Exception:
        problems.report("could not read the task's attempt number")
        return {}
    return {trial_run.TRIAL_ATTEMPT: str(attempt + 1)} if attempt > 0 else {}


def gpu_environment(problems: TaskProblems) -> Dict[str, str]:
    """CUDA_VISIBLE_DEVICES pinned to the task's GPUs, so two trials never share one by accident."""
    try:
        addresses = task_gpu_addresses()
    except Exception:
        problems.report("could not read the task's GPUs; CUDA_VISIBLE_DEVICES left as it is")
        return {}
    return {CUDA_VISIBLE_DEVICES: ",".join(addresses)} if addresses else {}


class PlainParams:
    """The trial's parameter values, evaluated from the space on the driver and pickled there."""

    def __init__(self, pickled: bytes):
        self.pickled = pickled

    def call(self, fn: Callable[..., Any]) -> Any:
        return fn(pickle.loads(self.pickled))


class SpaceOnExecutor:
    """The search space and the trial's config, evaluated here as stock SparkTrials does: for an
    objective that asks for `expr, memo, ctrl`, or values that cannot be pickled on the driver.
    Only these trials import hyperopt on the executor."""

    def __init__(self, pickled_space: bytes, config: dict):
        self.pickled_space = pickled_space
        self.config = config

    def call(self, fn: Callable[..., Any]) -> Any:
        from hyperopt.base import Domain

        from runtime_ml.trial.evaluation import call_objective

        domain = Domain(fn, pickle.loads(self.pickled_space), pass_expr_memo_ctrl=None)
        return call_objective(domain, self.config)


def shipped_output(value: Any) -> Any:
    """What the objective returned, as it travels to the driver: a number as it is, anything else
    as dict(value), the conversion hyperopt's Domain.evaluate makes (and fails with) first."""
    numpy = sys.modules.get("numpy")  # a numpy number implies numpy is loaded
    if isinstance(value, (float, int)) or (numpy is not None and isinstance(value, numpy.number)):
        return value
    return dict(value)


class TrialTask:
    """The function each trial's one-task Spark job runs on an executor.

    `objective` is the handle the launcher shipped once per fmin; its `.value` is the objective,
    unpickled once per Python worker (classic Spark: a broadcast, which PySpark caches in the worker
    while the fmin's tasks use it and drops after, or on a `local` master a `FileObjective`; Spark
    Connect: an `ArtifactObjective`). `params` calls it with this trial's values. With
    `reuse_worker` the task drains its input, so PySpark reuses the Python worker for the next
    trial; without, the worker exits after the trial, as with stock hyperopt.

    Yields one TaskOutput: what `shipped_output` makes of the objective's return value, or a
    TrialFailure (returned, not raised: Spark must not retry a trial the objective failed); the
    end of what the trial printed (PrintedOutput), or None when `keep_output` is off; and, with
    `strict` (the driver's RUNTIME_ML_STRICT, carried to the executor by the task), runtime-ml's
    own errors on the way, which the driver raises after the fmin.
    """

    def __init__(self, objective: Any, params: "PlainParams | SpaceOnExecutor", env: Dict[str, str],
                 reuse_worker: bool = True, keep_output: bool = True, strict: bool = False):
        self.objective = objective
        self.params = params
        self.env = env
        self.reuse_worker = reuse_worker
        self.keep_output = keep_output
        self.strict = strict

    def __call__(self, partition: Any) -> Any:
        if self.reuse_worker:
            for _ in partition:
                pass
        problems = TaskProblems(self.strict)
        env = dict(self.env)
        env.update(gpu_environment(problems))
        env.update(attempt_environment(env, problems))
        printed = PrintedOutput() if self.keep_output else None
        with TrialProcessState(env, problems):
            if printed is None:
                output = self._run()
            else:
                with printed:
                    output = self._run()
        if self.reuse_worker and not isinstance(output, TrialFailure):
            freeze_worker_heap_once(problems)  # (a traceback would keep the trial's frames alive)
        yield TaskOutput(output, printed.text() if printed is not None else None,
                         tuple(problems.texts))

    def _run(self):
        try:
            value = self.params.call(self.objective.value)
        except BaseException as error:
            return TrialFailure.shipped(error, traceback.format_exc())
        try:
            return shipped_output(value)
        except BaseException as error:
            return TrialFailure.shipped(error, with_result_hint(traceback.format_exc(), value))


OUTPUT_COLUMN = "output"  # the one binary column of a trial's job over Spark Connect
MAX_BINARY = 2**31 - 1  # the most an Arrow binary array (32-bit offsets) holds


def binary_row(value: bytes) -> Any:
    """One Arrow batch with `value` in one row of OUTPUT_COLUMN, built from its buffers:
    `pyarrow.array` and `RecordBatch.from_pydict` import pandas to inspect their input (0.2 s of
    CPU in each fresh Python worker, measured; a trial does not need pandas). A value too large for
    32-bit offsets goes through from_pydict, as every value did before."""
    import struct

    import pyarrow

    if len(value) > MAX_BINARY:
        return pyarrow.RecordBatch.from_pydict({OUTPUT_COLUMN: [value]})
    offsets = pyarrow.py_buffer(struct.pack("<ii", 0, len(value)))
    column = pyarrow.Array.from_buffers(pyarrow.binary(), 1, [None, offsets,
                                                              pyarrow.py_buffer(value)])
    return pyarrow.RecordBatch.from_arrays([column], names=[OUTPUT_COLUMN])


class ArrowTrialTask:
    """A TrialTask as a `mapInArrow` function (Spark Connect): its output, pickled, in one row."""

    def __init__(self, task: TrialTask):
        self.task = task

    def __call__(self, batches):
        done = next(iter(self.task(batches)))
        try:
            pickled = pickle.dumps(done)
        except Exception as error:  # the trial fails once; a raise here would make Spark retry it
            output = done.outcome
            failure = RuntimeError(f"the trial's outcome cannot be sent to the driver: "
                                   f"{type(error).__name__}: {error} (outcome: {output!r:.200})")
            text = output.traceback_text if isinstance(output, TrialFailure) else None
            pickled = pickle.dumps(done._replace(outcome=TrialFailure(failure, text or str(failure))))
        yield binary_row(pickled)
