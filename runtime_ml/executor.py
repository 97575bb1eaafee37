"""What runs on the executor around the user's objective, one trial at a time.

`ExecutorObjective` is a plain class so cloudpickle ships it with the objective. It must never
change what the objective computes: its own failures are logged and the objective still runs
exactly once; the objective's exceptions propagate unchanged to hyperopt.
"""

import logging
import os

logger = logging.getLogger("runtime_ml")

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"


def task_gpu_addresses():
    """The GPU addresses Spark assigned to the current task ([] outside a task or without GPUs)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    if context is None:
        return []
    resources = context.resources() or {}
    gpu = resources.get("gpu")
    return list(gpu.addresses) if gpu is not None else []


class EnvOverride:
    """Sets environment variables for the duration of a block and restores what was there."""

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


class ExecutorObjective:
    """The user's objective, run with the trial's GPUs pinned through CUDA_VISIBLE_DEVICES."""

    def __init__(self, fn):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(self).__name__)
        self.__doc__ = getattr(fn, "__doc__", None)

    def _trial_environment(self):
        try:
            addresses = task_gpu_addresses()
        except Exception:
            logger.warning("runtime-ml: could not read the task's GPUs; CUDA_VISIBLE_DEVICES "
                           "left as it is", exc_info=True)
            return {}
        return {CUDA_VISIBLE_DEVICES: ",".join(addresses)} if addresses else {}

    def __call__(self, *args, **kwargs):
        with EnvOverride(self._trial_environment()):
            return self.fn(*args, **kwargs)
