"""SparkTrials on a Spark Connect session, with zero code change (PySpark's local Connect server).

The session runs in its own process (tests/connect_scenario.py): a Connect session switches the
process to Connect mode, which the suite's classic session must not see.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime_ml import versions

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(
    versions.version_tuple(versions.installed_version("pyspark")) < (4,),
    reason="pip pyspark 3.5 ships no Spark Connect server (README: Spark Connect)")

JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL = 2, 3, 4


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("connect")
    records = root / "records"
    records.mkdir()
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}")
    env.pop("RUNTIME_ML_DISABLED", None)
    done = subprocess.run([sys.executable, str(HERE / "connect_scenario.py"), "local[2]",
                           str(records)], capture_output=True, text=True, env=env, timeout=600,
                          cwd=str(root))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout[-3000:], done.stderr[-5000:])
    return json.loads(lines[-1][len("RESULT "):])


def test_an_unchanged_job_tunes_on_a_connect_session_with_the_clusters_slots(scenario):
    assert scenario["active"] and scenario["session"].startswith("pyspark.sql.connect")
    tuned = scenario["tuned"]
    assert tuned["statuses"] == ["ok"] * 8 and tuned["best"] == ["kind", "x"]
    assert tuned["parallelism"] == 2  # local[2], read from the conf over Connect
    assert tuned["executions"] == 8


def test_it_is_tracked_as_on_classic_spark_with_the_objectives_own_metrics(scenario):
    runs = scenario["runs"]
    assert runs["parents"] == 1 and runs["children"] == 8
    assert runs["child statuses"] == ["FINISHED"] and runs["children with seen_x"] == 8
    assert set(runs["kind params"]) <= {"a", "b"} and runs["kind params"]
    assert scenario["switched off"] == {"new runs": 0}


def test_a_failing_objective_runs_once_per_trial_and_fails_as_in_hyperopt(scenario):
    assert scenario["failures"] == {"errors": ["<class 'ValueError'>"] * 3, "executions": 3}
    # hyperopt's own outcome when no trial succeeded
    assert scenario["all failed"] == ("Exception: There are no evaluation tasks, cannot return "
                                      "argmin of task losses.")


def test_a_timeout_interrupts_the_running_trials_and_leaves_no_operation_or_tag(scenario):
    timeout = scenario["timeout"]
    assert timeout["reason"] == "fmin run timeout" and timeout["seconds"] < 30
    assert set(timeout["states"]) <= {JOB_STATE_DONE, JOB_STATE_CANCEL}
    assert JOB_STATE_CANCEL in timeout["states"]
    assert timeout["active jobs"] == [] and timeout["tags left"] == []


def test_interrupting_the_callers_tag_cancels_the_fmin(scenario):
    interrupted = scenario["interrupted"]
    assert interrupted["reason"] == "fmin run cancelled by user"
    assert interrupted["seconds"] < 30 and interrupted["states"] == [JOB_STATE_CANCEL]
    assert interrupted["active jobs"] == []
