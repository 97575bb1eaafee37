"""Benchmark objectives, importable by the executors' Python workers."""

import time


def sleeper(seconds):
    def objective(x):
        time.sleep(seconds)
        return (x - 1) ** 2

    return objective
