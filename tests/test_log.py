"""runtime-ml's log lines: the logger's name once, no secret, and each line printed once whatever
logging the application or a library sets up."""

import os
import subprocess
import sys


def test_a_line_names_runtime_ml_once_in_the_applications_format_and_masks_the_password():
    """Before any fmin: the application's own log format names the logger once (no prefix of
    runtime-ml's own in the message), and the password is masked."""
    code = ("import logging, sys; logging.basicConfig(stream=sys.stdout, "
            "format='%(levelname)s:%(name)s:%(message)s'); "
            "from runtime_ml import policy; "
            "policy.logger.warning('could not reach %s', 'https://me:s3cret-pw@host')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "MLFLOW_TRACKING_PASSWORD": "s3cret-pw"})
    assert done.stdout.splitlines() == ["WARNING:runtime_ml:could not reach https://me:***@host"]


def test_a_line_is_printed_once_when_logging_is_configured_after_runtime_ml_printed_its_own():
    """An application without logging gets runtime-ml's lines on stderr as `LEVEL runtime_ml:
    ...`; when the root logger gets a handler later (MLflow 2.9's database store adds one
    mid-fmin), each line is printed by that handler only, not twice."""
    code = ("import logging, sys\n"
            "from runtime_ml import log\n"
            "log.show_when_unconfigured()\n"
            "log.logger().info('before')\n"
            "logging.basicConfig(stream=sys.stderr, format='ROOT %(levelname)s %(name)s: "
            "%(message)s')\n"
            "log.logger().warning('after')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines() == ["INFO runtime_ml: before",
                                        "ROOT WARNING runtime_ml: after"]
