"""Loaded (-p) into the pytest run of hyperopt's own SparkTrials tests: counts the fmin calls that
went through runtime-ml, and writes that count and whether runtime-ml was active to a JSON file;
runs the tests named in STOCK_PROPOSALS with stock's proposals at parallelism 1."""

import json
import logging
import os

import pytest

# These expect a timeout at parallelism 1 (with Spark unable to cancel jobs) to leave a cancelled
# trial. Under stock one always is: the trial running, or the one proposed ahead of it. runtime-ml
# proposes the next trial at parallelism 1 only once the previous result is in, so a timeout that
# falls in the few milliseconds between two trials finds nothing to cancel (it did in CI: 7
# succeeded, 0 cancelled). They run with the conf key that gives stock's proposals back; the
# default's timeouts are test_fidelity.py's.
STOCK_PROPOSALS = {"test_timeout_without_job_cancellation",
                   "test_timeout_without_job_cancellation_fmin_timeout"}
SEQUENTIAL_AT_ONE = "spark.runtimeml.hyperopt.sequentialAtParallelismOne"


class _Counter(logging.Handler):
    count = 0

    def emit(self, record):
        if "SparkTrials fmin:" in record.getMessage():
            type(self).count += 1


def pytest_configure(config):
    logger = logging.getLogger("runtime_ml")
    logger.addHandler(_Counter())
    logger.setLevel(logging.INFO)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if item.name not in STOCK_PROPOSALS:
        yield
        return
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()  # the test class's session, made in setUpClass
    spark.conf.set(SEQUENTIAL_AT_ONE, "false")
    try:
        yield
    finally:
        spark.conf.unset(SEQUENTIAL_AT_ONE)


def pytest_sessionfinish(session, exitstatus):
    import runtime_ml

    with open(os.environ["RUNTIME_ML_SUITE_REPORT"], "w") as report:
        json.dump({"active": runtime_ml.is_active(), "fmin_calls": _Counter.count}, report)
