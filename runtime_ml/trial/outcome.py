"""How a trial that failed travels from the executor to the driver: a TrialFailure.

hyperopt records a failed trial as `trial['misc']['error'] = (type text, traceback text)`. The
executor (the objective raised) and the driver (hyperopt rejected the result, the search space
failed for these values, or runtime-ml's own launch failed) both wrap the exception with its
traceback text in a TrialFailure. An exception that is not wrapped ended the trial's Spark job
itself: a cancellation, a lost executor.
"""

import pickle
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional, Tuple


class ObjectiveError(Exception):
    """The objective's exception where it cannot travel to the driver as it is: hyperopt's text
    for its type and its message. PySpark's own exceptions, such as CONTEXT_ONLY_VALID_ON_DRIVER
    from a SparkSession built inside the objective, do not survive pickling (unpickled, they raise
    AttributeError: 'NoneType' object has no attribute 'split')."""

    def __init__(self, type_text: str, message: str):
        super().__init__(message)
        self.type_text = type_text

    def __reduce__(self):
        return ObjectiveError, (self.type_text, str(self))


def portable(error: BaseException) -> BaseException:
    """`error` if it comes back from pickling (as the driver will unpickle it), else an
    ObjectiveError that says the same."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return ObjectiveError(str(type(error)), f"{type(error).__name__}: {error}")


@dataclass
class TrialFailure:
    """A trial that failed: the exception and the traceback text hyperopt records for it."""

    error: BaseException
    traceback_text: Optional[str] = None  # None: the job's own failure, recorded by its message

    @classmethod
    def shipped(cls, error: BaseException, traceback_text: str) -> "TrialFailure":
        """On the executor: one that survives pickling."""
        return cls(portable(error), traceback_text)

    @property
    def type_text(self) -> str:
        """hyperopt's text for the error's type, "<class 'ValueError'>"."""
        if isinstance(self.error, ObjectiveError):
            return self.error.type_text
        return str(type(self.error))

    @property
    def recorded_text(self) -> str:
        return self.traceback_text if self.traceback_text is not None else str(self.error)


class TaskOutput(NamedTuple):
    """What a trial's task sends back: the outcome (what the objective returned, as it travels,
    or a TrialFailure), the end of what the trial printed (None when that is not kept), and the
    texts of runtime-ml's own errors on the executor (kept under strict mode only)."""

    outcome: Any
    printed: Optional[str]
    problems: Tuple[str, ...] = ()
