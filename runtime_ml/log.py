"""runtime-ml's one logger: one name, credentials masked from the first line on.

Every module logs through `logger()`. A message carries no prefix of its own: the logger's name,
`runtime_ml`, says where a line comes from wherever the handler's format names the logger (the
handler runtime-ml adds itself prints `WARNING runtime_ml: ...`), so no format shows it twice. The
redaction filter (redaction.py) is on the logger from the moment any module can log.
"""

import logging

from runtime_ml.redaction import RedactingFilter

NAME = "runtime_ml"
# The format of the handler runtime-ml adds when the application configured no logging at all.
DEFAULT_FORMAT = "%(levelname)s %(name)s: %(message)s"


def logger() -> logging.Logger:
    """The `runtime_ml` logger, with its redaction filter (idempotent)."""
    found = logging.getLogger(NAME)
    if not any(isinstance(f, RedactingFilter) for f in found.filters):
        found.addFilter(RedactingFilter())
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
