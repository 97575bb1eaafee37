"""What runs on the executor: the user's objective, one trial at a time, and nothing heavy.

A trial's task brings the trial's parameter values (evaluated from the search space on the
driver), its environment, and a handle to the objective, which travels once per fmin. So the Python
worker imports what the objective imports, and hyperopt, numpy or mlflow only when the objective
does (or in the rare cases of `SpaceOnExecutor`). This module imports only the standard library and
runtime-ml's light modules.

Nothing here may change what the objective computes: failures of runtime-ml's own steps are logged
and the objective still runs exactly once.
"""

import gc
import logging
import os
import pickle
import sys
import traceback
from typing import Any, Callable, Dict, Optional

from runtime_ml import log
from runtime_ml.compat import versions
from runtime_ml.worker import trial_run
from runtime_ml.worker.outcome import TrialFailure
from runtime_ml.worker.results import with_result_hint

logger = log.logger()

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


def task_gpu_addresses():
    """The GPU addresses Spark assigned to the current task ([] outside a task or without GPUs)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return []
    gpu = (context.resources() or {}).get("gpu")
    return list(gpu.addresses) if gpu is not None else []


def attempt_environment(env):
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
        logger.warning("could not read the task's attempt number", exc_info=True)
        return {}
    return {trial_run.TRIAL_ATTEMPT: str(attempt + 1)} if attempt > 0 else {}


def gpu_environment():
    """CUDA_VISIBLE_DEVICES pinned to the task's GPUs, so two trials never share one by accident."""
    try:
        addresses = task_gpu_addresses()
    except Exception:
        logger.warning("could not read the task's GPUs; CUDA_VISIBLE_DEVICES left as "
                       "it is", exc_info=True)
        return {}
    return {CUDA_VISIBLE_DEVICES: ",".join(addresses)} if addresses else {}


def end_leftover_mlflow_runs():
    """End runs the objective left active in this worker (mlflow.start_run() without `with`, or
    mlflow.log_* starting one implicitly), as MLflow's exit hook does when a fresh worker exits.

    With tracking, the driver sets the trial run's real status and end time afterwards.
    """
    if "mlflow" not in sys.modules:
        return
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()


class TrialProcessState:
    """Puts back the process state a trial changed, so that the next trial on this reused Python
    worker starts as on a fresh one (as stock hyperopt's worker per trial does): the working
    directory, environment variables (the trial's own `env` is set for the trial), the root
    logger's handlers and level, and MLflow's fluent state (active runs, tracking URI,
    experiment). Module globals and imports stay shared (see README).

    Each step is guarded: a failure is logged and never touches the trial's result.
    """

    def __init__(self, env):
        self.env = env

    def __enter__(self):
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        root = logging.getLogger()
        self.handlers, self.level = list(root.handlers), root.level
        self.mlflow_state = versions.mlflow_fluent_state()
        os.environ.update(self.env)
        if trial_run.TRIAL_RUN_ID in self.env or trial_run.TRIAL_RUN_KEY in self.env:
            try:
                trial_run.guard_when_loaded()
            except Exception:
                logger.warning("could not guard MLflow's start_run for the trial",
                               exc_info=True)
        return self

    def __exit__(self, *exc_info):
        for what, step in (("ending the objective's MLflow runs", end_leftover_mlflow_runs),
                           ("restoring MLflow's tracking URI and experiment", self._mlflow),
                           ("restoring the working directory", self._cwd),
                           ("restoring environment variables", self._environ),
                           ("restoring the root logger", self._logging)):
            try:
                step()
            except Exception:
                logger.warning("%s after the trial failed", what, exc_info=True)
        return False

    def _mlflow(self):
        versions.restore_mlflow_fluent_state(self.mlflow_state)

    def _cwd(self):
        if os.getcwd() != self.cwd:
            os.chdir(self.cwd)

    def _environ(self):
        for name in set(os.environ) - set(self.environ):
            del os.environ[name]
        for name, value in self.environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value

    def _logging(self):
        root = logging.getLogger()
        for handler in list(root.handlers):
            if handler not in self.handlers:
                root.removeHandler(handler)
        for handler in self.handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(self.level)


_heap_frozen = False


def worker_is_reused(environ=None):
    """PySpark tells a Python worker it will run more tasks by SPARK_REUSE_WORKER (the default)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("SPARK_REUSE_WORKER"))


def freeze_worker_heap_once():
    """Spare every later trial in this Python worker a full garbage collection of its imports.

    PySpark's daemon runs gc.collect() after each task of a reused worker. With the objective's
    libraries imported, that walks every live object (an objective importing scikit-learn ran 14
    trials/s without the freeze and 35 with it on the benchmark machine; a trivial one, 27 and 30),
    and where the driver shares few cores with the executors it delays every other trial's launch.
    gc.freeze() moves what is alive after the first trial to a generation the collector skips
    (those objects are still freed by reference counting; a reference cycle among them that becomes
    garbage later is not collected). Once per worker.
    """
    global _heap_frozen
    if _heap_frozen or not worker_is_reused():
        return
    _heap_frozen = True
    try:
        gc.collect()  # what is garbage now must not be frozen
        gc.freeze()
    except Exception:  # never let this touch the trial
        logger.warning("could not freeze the Python worker's heap", exc_info=True)


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

        from runtime_ml.worker.evaluation import call_objective

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

    Yields (outcome, printed): what `shipped_output` makes of the objective's return value, or a
    TrialFailure (returned, not raised: Spark must not retry a trial the objective failed); and
    the end of what the trial printed (PrintedOutput), or None when `keep_output` is off.
    """

    def __init__(self, objective: Any, params: "PlainParams | SpaceOnExecutor", env: Dict[str, str],
                 reuse_worker: bool = True, keep_output: bool = True):
        self.objective = objective
        self.params = params
        self.env = env
        self.reuse_worker = reuse_worker
        self.keep_output = keep_output

    def __call__(self, partition):
        if self.reuse_worker:
            for _ in partition:
                pass
        env = dict(self.env)
        env.update(gpu_environment())
        env.update(attempt_environment(env))
        printed = PrintedOutput() if self.keep_output else None
        with TrialProcessState(env):
            if printed is None:
                output = self._run()
            else:
                with printed:
                    output = self._run()
        if self.reuse_worker and not isinstance(output, TrialFailure):
            freeze_worker_heap_once()  # (a traceback would keep the trial's frames alive)
        yield output, printed.text() if printed is not None else None

    def _run(self):
        try:
            value = self.params.call(self.objective.value)
        except BaseException as error:
            return TrialFailure.shipped(error, traceback.format_exc())
        try:
            return shipped_output(value)
        except BaseException as error:
            return TrialFailure.shipped(error, with_result_hint(traceback.format_exc(), value))


PRINTED_LIMIT = 64 * 1024  # characters of a trial's output kept: its end


class PrintedOutput:
    """What a trial writes to sys.stdout, sys.stderr and Python logging: passed on as before (to
    the executor's log) and its last PRINTED_LIMIT characters kept. Output written by C code
    straight to the file descriptors is not seen."""

    FORMAT = "%(levelname)s %(name)s: %(message)s"

    def __init__(self, limit=PRINTED_LIMIT):
        self.limit = limit
        self._parts = []
        self._size = 0
        self._saved: Optional[tuple] = None

    def write(self, text: str) -> None:
        if isinstance(text, str) and text:
            self._parts.append(text)
            self._size += len(text)
            if self._size > 2 * self.limit:
                self._parts = [self.text()]
                self._size = len(self._parts[0])

    def text(self) -> str:
        return "".join(self._parts)[-self.limit:]

    def __enter__(self):
        handler = _Forward(self)
        handler.setFormatter(logging.Formatter(self.FORMAT))
        logging.getLogger().addHandler(handler)
        self._saved = (sys.stdout, sys.stderr, handler)
        sys.stdout, sys.stderr = _Tee(sys.stdout, self), _Tee(sys.stderr, self)
        return self

    def __exit__(self, *exc):
        assert self._saved is not None, "__exit__ without __enter__"
        sys.stdout, sys.stderr, handler = self._saved
        logging.getLogger().removeHandler(handler)
        return False


class _Forward(logging.Handler):
    """A logging handler that hands each formatted record to a PrintedOutput."""

    def __init__(self, printed):
        super().__init__()
        self._printed = printed

    def emit(self, record):
        self._printed.write(self.format(record) + "\n")


class _Tee:
    """A stream that also hands what is written to a PrintedOutput."""

    def __init__(self, stream, printed):
        self._stream = stream
        self._printed = printed

    def write(self, text):
        self._printed.write(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


# The newest fmin's objective in this worker, by where it was shipped; it stays until the worker
# runs a trial of another fmin.
_objective: dict = {}


def cached_objective(key, load):
    """The objective shipped as `key`, loaded once per worker; an older fmin's is dropped."""
    if key not in _objective:
        _objective.clear()
        _objective[key] = load()
    return _objective[key]


class FileObjective:
    """The objective in a file every worker can open (`path`), read and unpickled once per Python
    worker (cached_objective keeps only the newest fmin's)."""

    def __init__(self, path: str):
        self.path = path

    @property
    def value(self) -> Any:
        return cached_objective(self.path, self._load)

    def _load(self):
        with open(self._where(), "rb") as shipped:
            return pickle.load(shipped)

    def _where(self):
        return self.path


class ArtifactObjective(FileObjective):
    """The objective as a Spark Connect session artifact: a file the session's executors have."""

    def _where(self):
        from pyspark import SparkFiles

        return SparkFiles.get(self.path)


class ArrowTrialTask:
    """A TrialTask as a `mapInArrow` function (Spark Connect): its output, pickled, in one row."""

    def __init__(self, task: TrialTask):
        self.task = task

    def __call__(self, batches):
        import pyarrow

        output, printed = next(iter(self.task(batches)))
        try:
            pickled = pickle.dumps((output, printed))
        except Exception as error:  # the trial fails once; a raise here would make Spark retry it
            failure = RuntimeError(f"the trial's outcome cannot be sent to the driver: "
                                   f"{type(error).__name__}: {error} (outcome: {output!r:.200})")
            text = output.traceback_text if isinstance(output, TrialFailure) else None
            pickled = pickle.dumps((TrialFailure(failure, text or str(failure)), printed))
        yield pyarrow.RecordBatch.from_pydict({"output": [pickled]})
