"""Objectives for the tests: importable by executors (tests/ is on their PYTHONPATH)."""

import json
import os
import time


def record_interval(record_dir, x, seconds):
    """Sleep, then leave a file saying when this trial ran and in which worker process."""
    start = time.time()
    time.sleep(seconds)
    with open(os.path.join(record_dir, f"{start:.6f}-{os.getpid()}-{x:.6f}.json"), "w") as out:
        json.dump({"start": start, "end": time.time(), "pid": os.getpid()}, out)


def read_intervals(record_dir):
    return [json.load(open(os.path.join(record_dir, name))) for name in os.listdir(record_dir)]


def peak_concurrency(intervals):
    events = sorted([(i["start"], 1) for i in intervals] + [(i["end"], -1) for i in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak
