"""hyperopt's own SparkTrials tests (hyperopt/tests/integration/test_spark.py, shipped in the
hyperopt wheel) pass unchanged with runtime-ml active, in strict mode, but those LEFT_OUT below.

They run in a fresh interpreter: they start and stop a local[4] session of their own.
"""

import json
import os
import subprocess
import sys
from importlib.metadata import version

HYPEROPT_0_2 = version("hyperopt").startswith("0.2.")

# Left out: two tests whose outcome is timing, not semantics.
LEFT_OUT = [
    # The second half expects 6 trials of 1 s at parallelism 4 to overrun a 4 s timeout (its
    # comment expects a negative x to be proposed, but with its seed none is: under stock it times
    # out only because stock launches about one trial per second). runtime-ml runs them in about
    # 2.5 s, so no timeout fires. The first half (a running trial cancelled by the timeout, with
    # hyperopt's log lines) is test_fidelity.py's
    # test_timeout_cancels_a_running_trial_with_hyperopts_lines, the second half its
    # test_a_timeout_keeps_finished_trials_and_cancels_the_rest.
    "test_timeout_with_job_cancellation",
]
if HYPEROPT_0_2:
    # hyperopt 0.2.7's version counts the successes of a seeded anneal search at parallelism 4
    # (7 of 8). anneal learns from the results it has seen when it proposes, which depends on when
    # trials finish: stock itself gives 5 on warm workers. hyperopt 0.3.0's version (another
    # seed, 6 of 8) runs. Both modes at both parallelisms: test_fidelity.py.
    LEFT_OUT.append("test_trial_run_info")


def test_hyperopts_own_sparktrials_suite_passes_with_runtime_ml(tmp_path):
    report = tmp_path / "report.json"
    env = dict(os.environ, RUNTIME_ML_STRICT="1", RUNTIME_ML_SUITE_REPORT=str(report),
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env.pop("RUNTIME_ML_DISABLED", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "hyperopt_suite_plugin", "--pyargs", "hyperopt.tests.integration.test_spark",
         "-k", " and ".join(f"not {name}" for name in LEFT_OUT)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=900,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " failed" not in summary and " passed" in summary, summary
    seen = json.loads(report.read_text())
    assert seen["active"] is True
    assert seen["fmin_calls"] >= 8, seen  # the suite's fmins went through runtime-ml
