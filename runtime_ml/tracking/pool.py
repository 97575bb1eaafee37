"""The tracker's threads: daemon threads, so a stalled server never holds up interpreter exit."""

import queue
import threading
import time
from concurrent.futures import Future


class DaemonPool:
    """A few daemon threads for MLflow calls: a stalled server never holds up interpreter exit."""

    def __init__(self, size):
        self._queue: queue.Queue = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"runtime-ml-tracking-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, function, *args, **kwargs):
        future: Future = Future()
        self._queue.put((future, function, args, kwargs))
        return future

    def _work(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, function, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args, **kwargs))
                except BaseException as error:
                    future.set_exception(error)

    def shutdown(self, deadline):
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

