"""hyperopt's own SparkTrials log lines, on its `hyperopt-spark` logger, in its words.

Users, their log alerts and hyperopt's own SparkTrials tests know these lines, so runtime-ml's
dispatch says them at the same points hyperopt's does (the texts are pinned by running hyperopt's
test_spark.py in the suite), with the tracking credentials in what a trial raised or returned
masked. runtime-ml's own advice goes to the `runtime_ml` logger instead.
"""

import logging

from runtime_ml.redaction import masked

logger = logging.getLogger("hyperopt-spark")

DEFAULT_JOB_DESCRIPTION = "Trial evaluation jobs launched by hyperopt fmin"


def job_group(group, description, interrupt_on_cancel):
    logger.debug(f"Job group id: {group}, job desc: {description}, job interrupt on cancel: "
                  f"{interrupt_on_cancel}")


def trial_started(tid: int) -> None:
    logger.debug(f"trial task {tid} started")


def trial_succeeded(tid, result):
    if logger.isEnabledFor(logging.DEBUG):  # (what the objective returned, masked, is costly)
        logger.debug(masked(f"trial task {tid} succeeded, result is {result}"))
    logger.debug(f"trial {tid} task thread exits normally and writes results back correctly.")


def trial_failed(tid, error, traceback_text):
    logger.error(masked(f"trial task {tid} failed, exception is {error}.\n {traceback_text}"))
    _caught(tid)


def trial_cancelled(tid, error):
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(masked(f"trial task {tid} cancelled, exception is {error}"))
    _caught(tid)


def _caught(tid):
    logger.debug(f"trial {tid} task thread catches an exception and writes the info back "
                 "correctly.")


def cancelling_jobs(group):
    logger.debug(f"Cancelling all running jobs in job group {group}")


def cannot_cancel_jobs():
    logger.info("Because the current Apache PySpark version does not support cancelling jobs by "
                "job group ID, SparkTrials will block until all of its running Spark jobs finish.")


def fmin_cancelled(reason):
    logger.warning("fmin cancelled because of " + reason)


def no_new_trials():
    logger.warning("fmin is cancelled, so new trials will not be launched.")


def early_stop_triggered():  # hyperopt 0.2.7's fmin loop says this when early_stop_fn stops it
    logging.getLogger("hyperopt.fmin").info(
        "Early stop triggered. Stopping iterations as condition is reach.")


def fmin_timeout_ignored():
    logger.warning("Timeout param was defined in Trials object, ignoring fmin definition")


def fmin_exited(error):
    if error is None:
        logger.debug("fmin thread exits normally.")
    elif isinstance(error, KeyboardInterrupt):
        logger.debug("fmin thread terminated by user.")
    else:
        logger.debug("fmin thread exits with an exception raised.")


def total_trials(trials):
    logger.info(f"Total Trials: {trials.count_total_trials()}: {trials.count_successful_trials()} "
                f"succeeded, {trials.count_failed_trials()} failed, "
                f"{trials.count_cancelled_trials()} cancelled.")
