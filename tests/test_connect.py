"""SparkTrials on a Spark Connect session, with zero code change: on PySpark's local Connect
server, and on a Connect server in front of a standalone cluster (separate executor JVMs).

The session runs in its own process (tests/connect_scenario.py): a Connect session switches the
process to Connect mode, which the suite's classic session must not see.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runtime_ml.compat import versions

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.skipif(
    versions.version_tuple(versions.installed_version("pyspark")) < (4,),
    reason="pip pyspark 3.5 ships no Spark Connect server (README: Spark Connect)")

JOB_STATE_CANCEL = 4


def run_scenario(remote, root, tracking_uri, env=None):
    records = root / "records"
    records.mkdir()
    full_env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri,
                    RUNTIME_ML_TEST_EXPERIMENT=f"connect-{uuid.uuid4().hex[:8]}", **(env or {}))
    full_env.pop("RUNTIME_ML_DISABLED", None)
    done = subprocess.run([sys.executable, str(HERE / "connect_scenario.py"), remote,
                           str(records)], capture_output=True, text=True, env=full_env,
                          timeout=600, cwd=str(root))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        pytest.fail(f"the scenario failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-8000:]}", pytrace=False)
    return json.loads(lines[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def local_server(tmp_path_factory, mlflow_server):
    """PySpark's local Connect server (`remote("local[2]")`), started by the scenario itself."""
    return run_scenario("local[2]", tmp_path_factory.mktemp("connect-local"), mlflow_server.uri)


@pytest.fixture(scope="module")
def standalone_server(tmp_path_factory, mlflow_server):
    """A Connect server (spark-submit SparkConnectServer) in front of a standalone master with
    two 1-core workers, all on 127.0.0.1 and stopped by their PIDs."""
    from conftest import SPARK_HOME, StandaloneCluster, free_port

    root = tmp_path_factory.mktemp("connect-standalone")
    conf_dir = root / "conf"
    conf_dir.mkdir()
    cluster = StandaloneCluster(root, sys.executable, conf_dir).start()
    port = free_port()
    log = open(root / "connect-server.log", "wb")
    server = subprocess.Popen(
        [str(SPARK_HOME / "bin" / "spark-submit"), "--class",
         "org.apache.spark.sql.connect.service.SparkConnectServer", "--master", cluster.url,
         "--conf", f"spark.connect.grpc.binding.port={port}",
         "--conf", "spark.connect.grpc.binding.address=127.0.0.1", "--conf", "spark.cores.max=2",
         "--conf", "spark.executor.cores=1", "--conf", "spark.ui.enabled=false"],
        stdout=log, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(1)
        else:
            raise RuntimeError(f"the Connect server did not come up; log in {root}")
        yield run_scenario(f"sc://127.0.0.1:{port}", root, mlflow_server.uri)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        cluster.stop()


@pytest.fixture(params=["local server", "standalone cluster"])
def scenario(request):
    name = {"local server": "local_server", "standalone cluster": "standalone_server"}
    return request.getfixturevalue(name[request.param])


def part(scenario, name):
    """One part of the scenario's results; a part that raised fails the test with its traceback."""
    value = scenario[name]
    if isinstance(value, dict) and "error" in value:
        pytest.fail(f"the scenario's part {name!r} raised:\n{value['error']}", pytrace=False)
    return value


def test_an_unchanged_job_tunes_on_a_connect_session_with_the_clusters_slots(scenario):
    assert scenario["active"] and scenario["session"].startswith("pyspark.sql.connect")
    tuned = part(scenario, "tuned")
    assert tuned["statuses"] == ["ok"] * 8 and tuned["best"] == ["kind", "x"]
    # local[2], or 2 workers x 1 core (spark.cores.max=2), read from the conf over Connect
    assert tuned["parallelism"] == 2
    assert tuned["executions"] == 8
    # runtime_ml/demo.py's tune(): the seeds' workflow, unmodified
    assert part(scenario, "seeds' workflow") == {"best": ["penalty", "regParam"]}


def test_a_trials_python_worker_imports_no_pandas_hyperopt_or_mlflow_it_does_not_use(scenario):
    # Python workers are reused: a later trial sees what an earlier one's result imported on its
    # way back in the same worker (pyarrow's from_pydict would import pandas)
    imports = part(scenario, "worker imports")
    assert imports["imported"] == [[], [], []] and imports["workers"] < 3


def test_it_is_tracked_as_on_classic_spark_with_the_objectives_own_metrics(scenario):
    runs = part(scenario, "runs")
    assert runs["parents"] == 1 and runs["children"] == 8
    assert runs["child statuses"] == ["FINISHED"] and runs["children with seen_x"] == 8
    assert set(runs["kind params"]) <= {"a", "b"} and runs["kind params"]
    assert part(scenario, "switched off") == {"new runs": 0}


def test_a_failing_objective_runs_once_per_trial_and_fails_as_in_hyperopt(scenario):
    # hyperopt's own outcome when no trial succeeded
    assert part(scenario, "failures") == {
        "errors": ["<class 'ValueError'>"] * 3, "executions": 3,
        "raised": "Exception: There are no evaluation tasks, cannot return argmin of task losses."}


def test_a_timeout_interrupts_the_running_trials_and_leaves_no_operation_or_tag(scenario):
    timeout = part(scenario, "timeout")
    # (that a timeout keeps the finished trials is shown on classic Spark: test_reliability.py)
    assert timeout["reason"] == "fmin run timeout" and timeout["seconds"] < 30
    assert timeout["states"] == [JOB_STATE_CANCEL]
    assert timeout["running operations"] == [] and timeout["tags left"] == []


def test_interrupting_the_callers_tag_cancels_the_fmin(scenario):
    interrupted = part(scenario, "interrupted")
    assert interrupted["reason"] == "fmin run cancelled by user"
    assert interrupted["seconds"] < 30 and interrupted["states"] == [JOB_STATE_CANCEL]
    assert interrupted["running operations"] == []


def test_a_cancellation_while_a_trial_is_being_proposed_cancels_it_and_fmin_returns(scenario):
    held = part(scenario, "held proposal")
    for way, reason in (("timeout", "fmin run timeout"), ("tag", "fmin run cancelled by user")):
        assert held[way] == {"waited out": False, "held": JOB_STATE_CANCEL, "unfinished": [],
                             "reason": reason}, way


def test_doctor_tells_the_connect_story_for_a_remote_session(tmp_path):
    cli = str(Path(sys.executable).parent / "runtime-ml")
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_CONF_DIR=str(tmp_path))
    done = subprocess.run([cli, "doctor", "--remote", "local[2]"], capture_output=True, text=True,
                          env=env, timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cluster: local[2] (local) over Spark Connect (local[2])" in done.stdout
    assert "Spark Connect: SparkTrials works with zero code change" in done.stdout
    assert "task slots now: 2 (from the conf over Spark Connect: local[2])" in done.stdout
    assert "SparkTrials() -> 2" in done.stdout


@pytest.mark.parametrize("value", [b"", b"\x00", bytes(range(256)) * 1000])
def test_a_trials_output_row_holds_its_bytes_exactly(value):
    from runtime_ml.worker.task import OUTPUT_COLUMN, binary_row

    batch = binary_row(value)
    assert batch.schema.names == [OUTPUT_COLUMN] and batch.num_rows == 1
    assert batch.column(0)[0].as_py() == value
