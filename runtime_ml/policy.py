"""runtime-ml's one error policy, for errors in its own code (never the user's).

Before the first trial launches, an internal error is logged as one warning and the call runs as
stock hyperopt would: `before_first_launch` turns it into FallBackToStock, and the fmin call runs
hyperopt's own fmin instead. After a trial is launched, it fails that trial (recorded with the
error; see dispatch) and the fmin goes on. The user's own mistakes (errors.UserInputError) pass
unchanged. Under RUNTIME_ML_STRICT=1 (the test suite) every internal error is raised instead, so
none can hide in a green run.
"""

from contextlib import contextmanager
from typing import Iterator, List

from runtime_ml import conf, log
from runtime_ml.errors import UserInputError

logger = log.logger()


class FallBackToStock(Exception):
    """runtime-ml's own set-up failed before any trial launched: run hyperopt's own fmin."""


def report_internal_error(what: str,
                          consequence: str = "continuing without it (hyperopt is unaffected)"
                          ) -> None:
    """Called from an `except` block inside runtime-ml: fail open, or raise in strict mode."""
    if conf.strict_mode():
        raise
    logger.warning("internal error while %s; %s.", what, consequence, exc_info=True)


@contextmanager
def before_first_launch(what: str) -> Iterator[None]:
    """Around runtime-ml's set-up of an fmin call, before any trial launched: an internal error
    is one warning, then FallBackToStock (the caller runs hyperopt's own fmin)."""
    try:
        yield
    except UserInputError:
        raise
    except Exception as error:
        report_internal_error(what, "this fmin runs as stock hyperopt's")
        raise FallBackToStock(what) from error


def note_after_launch(errors: List[BaseException], what: str, consequence: str,
                      error: BaseException) -> None:
    """Called from an `except` block once a trial is launched: log the error and keep it in
    `errors`, to be raised after the fmin by raise_first_in_strict_mode."""
    errors.append(error)
    logger.warning("internal error while %s; %s", what, consequence, exc_info=error)


def raise_first_in_strict_mode(errors: List[BaseException]) -> None:
    """After an fmin whose trials failed on runtime-ml's own errors: raise the first one under
    RUNTIME_ML_STRICT (each was already logged and failed its trial)."""
    if errors and conf.strict_mode():
        raise errors[0]
