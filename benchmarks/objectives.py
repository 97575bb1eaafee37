"""Benchmark objectives, importable by the executors' Python workers."""

import time


def sleeper(seconds):
    def objective(x):
        time.sleep(seconds)
        return (x - 1) ** 2

    return objective


def bowl(params):
    """A 2-D quadratic with its minimum 0 at x = 1, y = -2."""
    return (params["x"] - 1) ** 2 + (params["y"] + 2) ** 2


def traced_sleeper(seconds):
    """Like sleeper, and reports when it started and ended (epoch seconds) in its result."""

    def objective(x):
        started = time.time()
        time.sleep(seconds)
        return {"loss": (x - 1) ** 2, "status": "ok", "started": started, "ended": time.time()}

    return objective


def closing_over(data, seconds=0.0):
    """An objective that closes over `data` (as the seeds' workflow closes over its training
    set) and touches it in every trial."""

    def objective(x):
        time.sleep(seconds)
        return (x - 1) ** 2 + 0.0 * float(data[-1])

    return objective


def worker_footprint(x):
    """Loss x**2, and what this Python worker holds at the end of the trial."""
    return {"loss": x ** 2, "status": "ok", **footprint()}


def footprint():
    """Resident memory (MB) and heavy imports of the current process."""
    import os
    import sys

    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    heavy = ("hyperopt", "scipy", "numpy", "networkx", "mlflow", "pandas", "sklearn")
    return {"rss_mb": rss, "imported": [name for name in heavy if name in sys.modules],
            "pid": os.getpid()}

