"""runtime-ml's one logger: one name, one prefix, credentials masked from the first line on.

Every module logs through `logger()`. Messages are written without the prefix; a filter on the
logger adds "runtime-ml: " once, so the line reads the same in any application's log format, and
the redaction filter (redaction.py) is on the logger from the moment any module can log.
"""

import logging

from runtime_ml.redaction import RedactingFilter

NAME = "runtime_ml"
PREFIX = "runtime-ml: "
# The format of the handler runtime-ml adds when the application configured no logging at all.
DEFAULT_FORMAT = "%(levelname)s %(message)s"


class PrefixFilter(logging.Filter):
    """Starts each message of runtime-ml's logger with PREFIX (once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and not record.msg.startswith(PREFIX):
            record.msg = PREFIX + record.msg
        return True


def logger() -> logging.Logger:
    """The `runtime_ml` logger, with its prefix and redaction filters (idempotent)."""
    found = logging.getLogger(NAME)
    kinds = {type(f) for f in found.filters}
    for kind in (PrefixFilter, RedactingFilter):
        if kind not in kinds:
            found.addFilter(kind())
    return found


class _WhileRootUnconfigured(logging.StreamHandler):
    """stderr, only while the root logger has no handler. Once it has one (the application set
    up logging, or a library did: MLflow 2.9's database store configures the root logger), a line
    reaches it by propagation and is printed there, once."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def show_when_unconfigured() -> None:
    """Like hyperopt's own loggers: when the application configured no logging at all, print
    runtime-ml's INFO and WARNING lines to stderr instead of dropping the INFO ones."""
    found = logger()
    if not found.handlers and not logging.getLogger().handlers:
        handler = _WhileRootUnconfigured()
        handler.setFormatter(logging.Formatter(DEFAULT_FORMAT))
        found.addHandler(handler)
        if found.level == logging.NOTSET:
            found.setLevel(logging.INFO)
