"""A trial on a reused Python worker starts as on a fresh one, and later trials stay cheap.

`TrialProcessState` puts back what a trial changed in the process (working directory, environment,
root logger, MLflow's fluent state, runs the objective left active); `freeze_worker_heap_once`
spares every later trial a full garbage collection of the objective's imports. Each step is
guarded: a failure is reported through the task's TaskProblems and never touches the trial.
"""

import gc
import logging
import os
import sys
from typing import Dict, Optional

from runtime_ml.compat import mlflow_private
from runtime_ml.policy import TaskProblems
from runtime_ml.worker import trial_run


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
    experiment, and its own start_run where the trial's run guarded it). Module globals and
    imports stay shared (see README).

    Each step is guarded: a failure is reported (`problems`) and never touches the trial's result.
    """

    def __init__(self, env: Dict[str, str], problems: Optional[TaskProblems] = None):
        self.env = env
        self.problems = problems or TaskProblems(strict=False)

    def __enter__(self):
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        root = logging.getLogger()
        self.handlers, self.level = list(root.handlers), root.level
        self.mlflow_state = mlflow_private.mlflow_fluent_state()
        os.environ.update(self.env)
        if trial_run.TRIAL_RUN_ID in self.env or trial_run.TRIAL_RUN_KEY in self.env:
            try:
                trial_run.guard_when_loaded()
            except Exception:
                self.problems.report("could not guard MLflow's start_run for the trial")
        return self

    def __exit__(self, *exc_info):
        for what, step in (("ending the objective's MLflow runs", end_leftover_mlflow_runs),
                           ("restoring MLflow's tracking URI and experiment", self._mlflow),
                           ("putting MLflow's own start_run back", trial_run.unguard),
                           ("restoring the working directory", self._cwd),
                           ("restoring environment variables", self._environ),
                           ("restoring the root logger", self._logging)):
            try:
                step()
            except Exception:
                self.problems.report(f"{what} after the trial failed")
        return False

    def _mlflow(self):
        mlflow_private.restore_mlflow_fluent_state(self.mlflow_state)

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


def freeze_worker_heap_once(problems: Optional[TaskProblems] = None) -> None:
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
        (problems or TaskProblems(strict=False)).report("could not freeze the Python worker's heap")

