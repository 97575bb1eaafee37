"""What a trial prints, kept: its end travels to the driver with the trial's outcome (the
driver writes it, masked, as the trial run's trial_output.txt)."""

import logging
import sys
from typing import Optional

PRINTED_LIMIT = 64 * 1024  # characters of a trial's output kept: its end


class PrintedOutput:
    """What a trial writes to sys.stdout, sys.stderr and Python logging: passed on as before (to
    the executor's log) and its last PRINTED_LIMIT characters kept. Output written by C code
    straight to the file descriptors is not seen."""

    FORMAT = "%(levelname)s %(name)s: %(message)s"

    def __init__(self, limit=PRINTED_LIMIT):
        self.limit = limit
        self._parts = []
        self._size = 0
        self._saved: Optional[tuple] = None

    def write(self, text: str) -> None:
        if isinstance(text, str) and text:
            self._parts.append(text)
            self._size += len(text)
            if self._size > 2 * self.limit:
                self._parts = [self.text()]
                self._size = len(self._parts[0])

    def text(self) -> str:
        return "".join(self._parts)[-self.limit:]

    def __enter__(self):
        handler = _Forward(self)
        handler.setFormatter(logging.Formatter(self.FORMAT))
        logging.getLogger().addHandler(handler)
        self._saved = (sys.stdout, sys.stderr, handler)
        sys.stdout, sys.stderr = _Tee(sys.stdout, self), _Tee(sys.stderr, self)
        return self

    def __exit__(self, *exc):
        assert self._saved is not None, "__exit__ without __enter__"
        sys.stdout, sys.stderr, handler = self._saved
        logging.getLogger().removeHandler(handler)
        return False


class _Forward(logging.Handler):
    """A logging handler that hands each formatted record to a PrintedOutput."""

    def __init__(self, printed):
        super().__init__()
        self._printed = printed

    def emit(self, record):
        self._printed.write(self.format(record) + "\n")


class _Tee:
    """A stream that also hands what is written to a PrintedOutput."""

    def __init__(self, stream, printed):
        self._stream = stream
        self._printed = printed

    def write(self, text):
        self._printed.write(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)

