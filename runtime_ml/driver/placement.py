"""Where a trial's job should run: spread over the executors, so that no executor runs two trials
while another with a free slot runs none.

Spark gives a one-task job to the first executor with a free core in a shuffled list of offers,
so trials stack on some executors while others idle (hyperopt issue 921), and a trial that uses
all of an executor's cores (LightGBM, XGBoost, n_jobs=-1) then shares them. On a classic session
with more than one executor, each trial's job prefers the executor that runs the fewest of this
fmin's trials and has a free slot (launcher.ClassicLauncher asks Spark for it with a location
preference; Spark's locality wait bounds how long a busy preferred executor can hold a trial).

`choose` is the decision, a pure function; `Spreader` keeps the fmin's running trials per
executor for it, from any launcher thread.
"""

import math
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence

REREAD_SECONDS = 2.0  # how old the executor list may be when a trial is placed


def slots_per_executor(cores, task_cpus, executor_gpus=None, task_gpus=None):
    """Tasks one executor runs at once: cores / spark.task.cpus, limited by GPUs per task."""
    if cores is None:
        return None
    slots = cores // max(1, task_cpus)
    if task_gpus:
        gpu_slots = math.floor((executor_gpus or 0) / task_gpus + 1e-9)
        slots = min(slots, gpu_slots)
    return slots


class ExecutorSlot(NamedTuple):
    id: str
    host: str
    slots: int  # trials it can run at once: its cores / spark.task.cpus


def choose(executors: Sequence[ExecutorSlot], running: Dict[str, int]) -> Optional[ExecutorSlot]:
    """The executor for the next trial: of those with a free slot that Spark's location string can
    name, the one running the fewest of the fmin's trials (ties: the one with more free slots,
    then the lowest id); None when there is no choice to make (fewer than two executors) or no
    such executor."""
    if len(executors) < 2:
        return None
    # Spark's location string splits at the first "_": such a host cannot be named in it
    free = [e for e in executors if running.get(e.id, 0) < e.slots and "_" not in e.host]
    if not free:
        return None
    return min(free, key=lambda e: (running.get(e.id, 0), -(e.slots - running.get(e.id, 0)),
                                    _id_order(e.id)))


def _id_order(executor_id):
    return (0, int(executor_id), "") if executor_id.isdigit() else (1, 0, executor_id)


def location(executor: ExecutorSlot) -> str:
    """Spark's location string for one executor (a TaskLocation that is process-local to it)."""
    return f"executor_{executor.host}_{executor.id}"


class Spreader:
    """The fmin's running trials per executor; `read_executors()` lists the executors (at most
    every REREAD_SECONDS)."""

    def __init__(self, read_executors: Callable[[], List[ExecutorSlot]],
                 clock: Callable[[], float] = time.monotonic):
        self._read = read_executors
        self._clock = clock
        self._lock = threading.Lock()
        self._executors: List[ExecutorSlot] = []
        self._read_at: Optional[float] = None
        self._running: Dict[str, int] = {}

    def take(self) -> Optional[ExecutorSlot]:
        """The executor the next trial should prefer (counted as running there), or None."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= REREAD_SECONDS:
                self._executors, self._read_at = self._read(), now
            chosen = choose(self._executors, self._running)
            if chosen is not None:
                self._running[chosen.id] = self._running.get(chosen.id, 0) + 1
            return chosen

    def give_back(self, executor: Optional[ExecutorSlot]) -> None:
        """The trial placed with take() has ended."""
        if executor is None:
            return
        with self._lock:
            self._running[executor.id] -= 1
