"""runtime-ml's one error policy, for errors in its own code (never the user's).

Before hyperopt's fmin loop starts, an internal error is logged as one warning and the job carries
on as stock hyperopt would (fail open). After a trial is launched, it fails that trial (recorded
with the error; see dispatch) and the fmin goes on. Under RUNTIME_ML_STRICT=1 (the test suite)
every such error is raised instead, so none can hide in a green run.
"""


from runtime_ml import conf, log

logger = log.logger()


def report_internal_error(what):
    """Called from an `except` block inside runtime-ml: fail open, or raise in strict mode."""
    if conf.strict_mode():
        raise
    logger.warning(
        "internal error while %s; continuing without it (hyperopt is unaffected).",
        what,
        exc_info=True,
    )


def note_after_launch(errors, what, consequence, error):
    """Called from an `except` block once a trial is launched: log the error and keep it in
    `errors`, to be raised after the fmin by raise_first_in_strict_mode."""
    errors.append(error)
    logger.warning("internal error while %s; %s", what, consequence, exc_info=error)


def raise_first_in_strict_mode(errors):
    """After an fmin whose trials failed on runtime-ml's own errors: raise the first one under
    RUNTIME_ML_STRICT (each was already logged and failed its trial)."""
    if errors and conf.strict_mode():
        raise errors[0]
