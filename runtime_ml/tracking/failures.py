"""What a failed MLflow call means for the rest of an fmin's tracking."""

from concurrent.futures import TimeoutError as FutureTimeout

from runtime_ml.policy import caused_outside


class TrackingStopped(Exception):
    """Tracking stopped (said once, where it stopped): what needed the store is skipped."""


def failure_kind(error, store_answers):
    """What a failed MLflow call means: 'internal' (runtime-ml's own: any error that does not
    come from outside, policy.caused_outside), 'unreachable' (the store does not answer: stop
    tracking) or 'refused' (the store said no to this one request).

    `store_answers` is asked only when the error itself cannot tell: MLflow raises the same
    MlflowException for a refused request and for a server that went away.
    """
    if isinstance(error, (OSError, TimeoutError, FutureTimeout, TrackingStopped)):
        return "unreachable"
    if not caused_outside(error):
        return "internal"
    return "refused" if store_answers() else "unreachable"

