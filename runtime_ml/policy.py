"""runtime-ml's one error policy, for errors in its own code (never the user's).

An error is runtime-ml's own unless it comes from outside (`caused_outside`: the network, a file,
MLflow's store refusing a request) or is the user's mistake (errors.UserInputError, raised
unchanged). One entry per phase:
- before the first trial launches (`before_first_launch`): one warning, then FallBackToStock, and
  the fmin call runs hyperopt's own fmin instead;
- during dispatch and tracking, once a trial is launched (`note_after_launch`): one warning; the
  error fails that trial or costs that one write, and the fmin goes on;
- on the worker (`TaskProblems`): one warning in the worker's log; the trial is untouched;
- anywhere else that fails open (`report_internal_error`): one warning;
- another package's private name gone (`private_name_moved`, from compat/): one warning per name,
  and its fallback.
Under RUNTIME_ML_STRICT=1 (the test suite) every one of them is raised instead: before the launch
at once, after it once the fmin ends (`raise_first_in_strict_mode`; the worker's travel back with
the trial's outcome), so none can hide in a green run.
"""

import sys
import threading
import traceback
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Iterator, List, Set

from runtime_ml import conf, log
from runtime_ml.errors import UserInputError

logger = log.logger()


def caused_outside(error: BaseException) -> bool:
    """Whether an error comes from outside runtime-ml's code: the network or a file (OSError,
    which requests' errors are), a wait that ran out, or MLflow's store refusing a request
    (MlflowException). Every other exception raised inside runtime-ml is its own, whoever raised
    it (a ValueError from a library runtime-ml called wrongly included), and strict mode raises it.
    """
    if isinstance(error, (OSError, TimeoutError, FutureTimeout)):
        return True
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")  # loaded if MLflow raised it
    return mlflow_exceptions is not None and isinstance(error, mlflow_exceptions.MlflowException)


_moved_said: Set[str] = set()
_moved_lock = threading.Lock()


def private_name_moved(name: str, fallback: str) -> None:
    """compat/ found another package's private name gone (`name`, e.g. hyperopt's
    Trials._dynamic_trials) and uses its fallback: one warning per name and process, raised as
    an AttributeError in strict mode (the suite's compat tests then fail loudly)."""
    if conf.strict_mode():
        raise AttributeError(f"{name} is not where runtime-ml reads it; {fallback}")
    with _moved_lock:
        if name in _moved_said:
            return
        _moved_said.add(name)
    logger.warning("%s is not where runtime-ml reads it (the installed version moved it); %s.",
                   name, fallback)


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


class TaskProblems:
    """runtime-ml's own errors inside one trial's task on an executor (its steps around the
    objective: the task's GPUs and attempt, putting the worker's state back, the heap freeze).

    Each is a warning in the worker's log and never touches the trial. Under strict mode, which
    the task carries from the driver (an executor's environment need not have RUNTIME_ML_STRICT),
    its text is also kept, travels back with the trial's outcome, and the driver raises it after
    the fmin (ExecutorInternalError)."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.texts: List[str] = []

    def report(self, what: str) -> None:
        """Called from an `except` block in the task."""
        logger.warning("%s", what, exc_info=True)
        if self.strict and not caused_outside(sys.exc_info()[1] or Exception()):
            self.texts.append(f"{what}\n{traceback.format_exc()}")


class ExecutorInternalError(RuntimeError):
    """An error of runtime-ml's own on an executor, raised on the driver in strict mode."""
