"""Objectives for the tests: importable by executors (tests/ is on their PYTHONPATH)."""

import json
import os
import sys
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


def quick_then_stalls(record_dir, quick, x):
    """The first `quick` trials to start return at once, the later ones sleep 60 s (until a
    timeout or a cancellation ends them). Each start leaves a numbered file: `started` counts
    them, in the order the trials reached their executors."""
    index = 0
    while True:
        try:
            os.close(os.open(os.path.join(record_dir, f"started-{index}"),
                             os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            index += 1
    if index >= quick:
        time.sleep(60)
    return x


def started(record_dir):
    return sum(1 for name in os.listdir(record_dir) if name.startswith("started-"))


def square(x):
    return x ** 2


def numeric_loss(params):
    """A loss from any value's printed form (spaces of every kind)."""
    flat = str(params)
    return float(sum(ord(c) for c in flat) % 97)


HEAVY_PACKAGES = ("hyperopt", "numpy", "scipy", "networkx", "mlflow", "pandas")


def heavy_imports(x):
    """Loss x**2, and which heavy packages this Python worker has imported."""
    return {"loss": x ** 2, "status": "ok",
            "imported": sorted(name for name in HEAVY_PACKAGES if name in sys.modules)}


def _record(record_dir, event, label):
    with open(os.path.join(record_dir, f"{event}-{label}-{os.getpid()}-{time.time():.6f}"), "w"):
        pass


def records(record_dir, event, label):
    """{pid: count} of the records of `event` for `label`."""
    counts = {}
    for name in os.listdir(record_dir):
        kind, of, pid, _ = name.split("-")
        if (kind, of) == (event, label):
            counts[int(pid)] = counts.get(int(pid), 0) + 1
    return counts


def _unpickled(record_dir, label):
    _record(record_dir, "load", label)
    return Marker(record_dir, label)


class Marker:
    """A value an objective closes over that records each unpickling and each deletion."""

    def __init__(self, record_dir, label):
        self.record_dir, self.label = record_dir, label

    def __reduce__(self):
        return _unpickled, (self.record_dir, self.label)

    def __del__(self):
        _record(self.record_dir, "del", self.label)


def closes_over(marker, x):
    time.sleep(0.2)
    return {"loss": x ** 2, "status": "ok", "pid": os.getpid(), "label": marker.label}


def resumable(record_dir, params):
    """Leaves one file per evaluation; n == 0 raises and depth > 7 is a failed evaluation."""
    with open(os.path.join(record_dir, f"eval-{os.getpid()}-{time.time():.6f}"), "w"):
        pass
    time.sleep(0.1)
    if params["n"] == 0:
        raise ValueError("n must not be 0")
    if params["model"].get("depth", 0) > 7:
        return {"status": "fail"}
    return {"loss": params["lr"] + params["model"].get("alpha", 0.5), "status": "ok"}


def evaluations(record_dir):
    return sum(1 for name in os.listdir(record_dir) if name.startswith("eval-"))


def breaks_runtime_mls_step_after_the_trial(x):
    """Returns x, and leaves in sys.modules["mlflow"] an object whose active_run() (runtime-ml's
    first step after the trial asks it) raises once and puts back what was there: runtime-ml's
    own step on the executor fails, once, and the worker is as before."""
    real = sys.modules.get("mlflow")

    class Broken:
        def active_run(self):
            if real is None:
                del sys.modules["mlflow"]
            else:
                sys.modules["mlflow"] = real
            raise RuntimeError("runtime-ml's step after the trial broke")

    sys.modules["mlflow"] = Broken()
    return x
