"""What runs on the executor around the user's objective, one trial at a time.

Nothing here may change what the objective computes: failures of runtime-ml's own steps are logged
and the objective still runs exactly once.
"""

import gc
import logging
import os
import sys

logger = logging.getLogger("runtime_ml")

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


def task_gpu_addresses():
    """The GPU addresses Spark assigned to the current task ([] outside a task or without GPUs)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return []
    gpu = (context.resources() or {}).get("gpu")
    return list(gpu.addresses) if gpu is not None else []


def gpu_environment():
    """CUDA_VISIBLE_DEVICES pinned to the task's GPUs, so two trials never share one by accident."""
    try:
        addresses = task_gpu_addresses()
    except Exception:
        logger.warning("runtime-ml: could not read the task's GPUs; CUDA_VISIBLE_DEVICES left as "
                       "it is", exc_info=True)
        return {}
    return {CUDA_VISIBLE_DEVICES: ",".join(addresses)} if addresses else {}


class EnvOverride:
    """Sets environment variables for the duration of a block and restores what was there.

    Python workers are reused across trials: nothing of one trial may leak into the next.
    """

    def __init__(self, values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for name, value in self.values.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value
        return self

    def __exit__(self, *exc_info):
        for name, old in self.saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        return False


def end_leftover_mlflow_run(env):
    """End runs the objective left active in this worker (mlflow.log_* starts one implicitly).

    The driver sets the trial run's real status and end time afterwards.
    """
    if "MLFLOW_RUN_ID" not in env or "mlflow" not in sys.modules:
        return
    try:
        import mlflow

        while mlflow.active_run() is not None:
            mlflow.end_run()
    except Exception:
        logger.warning("runtime-ml: could not end the trial's MLflow run on the executor",
                       exc_info=True)


_heap_frozen = False


def worker_is_reused(environ=None):
    """PySpark tells a Python worker it will run more tasks by SPARK_REUSE_WORKER (the default)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("SPARK_REUSE_WORKER"))


def freeze_worker_heap_once():
    """Spare every later trial in this Python worker a full garbage collection of its imports.

    PySpark's daemon runs gc.collect() after each task of a reused worker. With hyperopt, numpy and
    the objective's libraries imported, that walks every live object: about 45 ms of CPU per trial
    on the benchmark machine (runtime-ml's own work in the task is under 1 ms), and where the driver
    shares few cores with the executors it delays every other trial's launch. gc.freeze() moves
    what is alive after the first trial to a generation the collector skips (those objects are
    still freed by reference counting; a reference cycle among them that becomes garbage later is
    not collected). Once per worker.
    """
    global _heap_frozen
    if _heap_frozen or not worker_is_reused():
        return
    _heap_frozen = True
    try:
        gc.collect()  # what is garbage now must not be frozen
        gc.freeze()
    except Exception:  # never let this touch the trial
        logger.warning("runtime-ml: could not freeze the Python worker's heap", exc_info=True)
