"""Loaded (-p) into the pytest run of hyperopt's own SparkTrials tests: counts the fmin calls that
went through runtime-ml, and writes that count and whether runtime-ml was active to a JSON file."""

import json
import logging
import os


class _Counter(logging.Handler):
    count = 0

    def emit(self, record):
        if "SparkTrials fmin:" in record.getMessage():
            type(self).count += 1


def pytest_configure(config):
    logger = logging.getLogger("runtime_ml")
    logger.addHandler(_Counter())
    logger.setLevel(logging.INFO)


def pytest_sessionfinish(session, exitstatus):
    import runtime_ml

    with open(os.environ["RUNTIME_ML_SUITE_REPORT"], "w") as report:
        json.dump({"active": runtime_ml.is_active(), "fmin_calls": _Counter.count}, report)
