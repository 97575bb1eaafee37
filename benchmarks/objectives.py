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
