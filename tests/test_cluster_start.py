"""Cluster start as an admin does it: the init script on a fresh node interpreter, a standalone
master and two workers on 127.0.0.1, a real MLflow server, and `spark-submit` of unmodified code."""

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import (
    KEY,
    MlflowServer,
    StandaloneCluster,
    free_port,
    init_script,
    make_node,
    node_imports,
)
from hyperopt import SparkTrials

REPO = Path(__file__).resolve().parent.parent


def test_script_refuses_clearly_and_changes_nothing(tmp_path, wheelhouse):
    python, conf_dir = make_node(tmp_path)
    cases = [
        (["--python", "/no/such/python"], "no such Python: /no/such/python"),
        (["--python", str(python), "--wheelhouse", str(tmp_path / "missing")],
         f"wheelhouse {tmp_path / 'missing'} is not a directory"),
        (["--python", str(python), "--wheelhouse", str(tmp_path)],
         f"wheelhouse {tmp_path} has no wheel matching runtime_ml-*-*.whl"),
        (["--python", str(python), "--wheelhouse", str(wheelhouse), "--version", "9.9.9"],
         "has no wheel matching runtime_ml-9.9.9-*.whl"),
        (["--python", str(python)], "SPARK_HOME is unset and no --spark-conf-dir was given"),
    ]
    for args, message in cases:
        env = {"SPARK_HOME": ""} if "--spark-conf-dir" not in args else None
        done = init_script(*args, "--log-file", str(tmp_path / "init.log"),
                           *([] if args == ["--python", str(python)] else
                             ["--spark-conf-dir", str(conf_dir)]), env=env)
        assert done.returncode == 1, (args, done.stdout)
        last = done.stdout.strip().splitlines()[-1]
        assert "ERROR:" in last and message in last, (args, last)
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    if os.access(read_only, os.W_OK):  # root ignores permissions: nothing to test here
        return
    done = init_script("--python", str(python), "--spark-conf-dir", str(read_only))
    assert f"the Spark conf dir {read_only} is not writable" in done.stdout
    assert list(conf_dir.iterdir()) == []
    assert node_imports(python, "import runtime_ml", tmp_path).returncode != 0


def test_script_twice_is_once_keeps_admin_keys_and_uninstall_reverses(tmp_path, wheelhouse):
    python, conf_dir = make_node(tmp_path)
    admin = f"spark.task.cpus 2\n{KEY}   false\n"
    (conf_dir / "spark-defaults.conf").write_text(admin)
    args = ["--python", str(python), "--wheelhouse", str(wheelhouse), "--spark-conf-dir",
            str(conf_dir), "--tracking-uri", "http://127.0.0.1:5000", "--log-file",
            str(tmp_path / "init.log")]

    first = init_script(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"kept the admin's own setting of {KEY}" in first.stdout
    snapshot = {p.name: p.read_text() for p in conf_dir.iterdir()}
    hook = node_imports(python, "import hyperopt, runtime_ml; print(runtime_ml.is_active())",
                        tmp_path)
    assert hook.stdout.strip() == "True", hook.stderr
    defaults = snapshot["spark-defaults.conf"]
    assert defaults.startswith(admin)  # the admin's lines, untouched
    assert "spark.executorEnv.MLFLOW_TRACKING_URI http://127.0.0.1:5000" in defaults
    assert f"{KEY} true" not in defaults
    assert snapshot["spark-env.sh"].count("MLFLOW_TRACKING_URI='http://127.0.0.1:5000'") == 1
    log_lines = (tmp_path / "init.log").read_text().splitlines()
    assert all(line[:4].isdigit() and "Z runtime-ml-init: " in line for line in log_lines)

    second = init_script(*args)
    assert second.returncode == 0
    assert {p.name: p.read_text() for p in conf_dir.iterdir()} == snapshot

    removed = init_script(*args, "--uninstall")
    assert removed.returncode == 0, removed.stdout
    assert (conf_dir / "spark-defaults.conf").read_text() == admin
    assert not (conf_dir / "spark-env.sh").exists()
    assert node_imports(python, "import runtime_ml", tmp_path).returncode != 0


@pytest.mark.skipif("resource_profile" not in inspect.signature(SparkTrials.__init__).parameters,
                    reason="SparkTrials(resource_profile=...) came with hyperopt 0.3.0")
def test_trials_run_with_the_users_resource_profile_and_count_its_slots(tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    cluster = StandaloneCluster(tmp_path, sys.executable, conf_dir, cores=2).start()
    try:
        job = cluster.submit(str(REPO / "tests" / "resource_profile_job.py"),
                             "spark.cores.max=4", f"{KEY}=false")
    finally:
        cluster.stop()
    assert job.returncode == 0, job.stderr[-4000:]
    result = json.loads(job.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert result["task_cpus"] == [2]  # every trial's task ran with the profile's 2 cpus
    # 2 workers x 2 cores hold 4 default tasks but 2 of the profile's
    assert result["actual_parallelism"] == 2 and result["trials"] == 4


# ------------------------------------------------------------------ tracking credentials

SECRET = "p@ss'w0rd-S3cret"  # an @ and a quote: percent-encoded in a URI, quoted in a shell file
TOKEN = "tok-9f8e7d6c5b4a"


def secret_forms(*secrets):
    from urllib.parse import quote

    return {form for secret in secrets for form in (secret, quote(secret, safe=""))}


def files_holding(directory, secrets):
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*")
                  if path.is_file() and any(s in path.read_text(errors="replace")
                                            for s in secret_forms(*secrets)))


def sourced_env(conf_dir):
    """What a Spark process started on this node gets from spark-env.sh."""
    shown = subprocess.run(["bash", "-c", f". {conf_dir / 'spark-env.sh'}; env -0"],
                           capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    pairs = (item.split("=", 1) for item in shown.stdout.split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("MLFLOW_")}


def test_each_credential_form_reaches_spark_env_and_no_log_conf_or_spark_file(tmp_path,
                                                                                  wheelhouse):
    from urllib.parse import quote

    python, conf_dir = make_node(tmp_path)
    (tmp_path / "password").write_text(SECRET + "\n")
    (tmp_path / "token").write_text(TOKEN + "\n")
    log_file = tmp_path / "init.log"
    base = ["--python", str(python), "--wheelhouse", str(wheelhouse), "--spark-conf-dir",
            str(conf_dir), "--log-file", str(log_file)]
    server = "http://127.0.0.1:5000"
    plain = {"MLFLOW_TRACKING_URI": server}
    forms = [
        (["--tracking-uri", f"http://admin:{quote(SECRET, safe='')}@127.0.0.1:5000"], None,
         {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": SECRET},
         "http://admin:***@127.0.0.1:5000"),
        (["--tracking-uri", server, "--tracking-username", "admin", "--tracking-password-file",
          str(tmp_path / "password")], None,
         {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": SECRET},
         f"MLFLOW_TRACKING_PASSWORD from --tracking-password-file {tmp_path / 'password'}"),
        (["--tracking-uri", server, "--tracking-token-file", str(tmp_path / "token")], None,
         {"MLFLOW_TRACKING_TOKEN": TOKEN}, "MLFLOW_TRACKING_TOKEN from --tracking-token-file"),
        (["--tracking-uri", server, "--tracking-credentials-from-env"],
         {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": SECRET},
         {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": SECRET},
         "MLFLOW_TRACKING_PASSWORD from the environment (MLFLOW_TRACKING_PASSWORD)"),
    ]
    credentials = conf_dir / "runtime-ml-tracking-credentials.sh"
    for args, env, expected, said in forms:
        done = init_script(*base, *args, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert said in done.stdout, done.stdout
        for text in (done.stdout, done.stderr, log_file.read_text()):
            assert not {s for s in secret_forms(SECRET, TOKEN) if s in text}, text
        # only the private credentials file holds them (shell-quoted; read back just below)
        assert set(files_holding(conf_dir, [SECRET, TOKEN])) <= {credentials.name}
        assert credentials.stat().st_mode & 0o777 == 0o600
        assert sourced_env(conf_dir) == dict(plain, **expected)
        assert f"spark.executorEnv.MLFLOW_TRACKING_URI {server}\n" in \
            (conf_dir / "spark-defaults.conf").read_text()

    twice = init_script(*base, "--tracking-uri", "http://admin:other-Pw-42@h:5000",
                        "--tracking-password-file", str(tmp_path / "password"))
    assert twice.returncode == 1
    assert not {s for s in secret_forms(SECRET, "other-Pw-42") if s in twice.stdout + twice.stderr}
    assert ("MLFLOW_TRACKING_PASSWORD is given twice (the URI and --tracking-password-file "
            f"{tmp_path / 'password'}); give it once") in twice.stdout
    assert init_script(*base, "--tracking-uri", server).returncode == 0  # credentials dropped
    assert not credentials.exists() and sourced_env(conf_dir) == plain
    assert init_script(*base, "--tracking-uri", server, "--tracking-token-file",
                       str(tmp_path / "token")).returncode == 0
    removed = init_script(*base, "--uninstall")
    assert removed.returncode == 0 and f"removed the tracking credentials {credentials}" in \
        removed.stdout
    assert not credentials.exists() and files_holding(tmp_path / "spark-conf", [TOKEN]) == []


def test_init_script_then_unmodified_job_tracks_into_a_basic_auth_server_unseen_on_the_spark_ui(
        tmp_path, wheelhouse):
    """The init script on a fresh node with a URI holding user:password@, a standalone master and
    two 1-core workers, then `spark-submit` of the seeds' unmodified job: one parent run with a
    nested run per trial, logged by the driver and (the objective's own calls) by the executors
    into an MLflow server that refuses requests without the credentials; the application's
    environment on the Spark UI (its REST API) holds no part of the password."""
    from urllib.parse import quote

    import mlflow

    (tmp_path / "server").mkdir()
    server = MlflowServer(tmp_path / "server", admin_password=SECRET).start()
    try:
        python, conf_dir = make_node(tmp_path)
        done = init_script("--python", str(python), "--wheelhouse", str(wheelhouse),
                           "--spark-conf-dir", str(conf_dir), "--tracking-uri",
                           server.uri.replace("://", f"://admin:{quote(SECRET, safe='')}@"),
                           "--log-file", str(tmp_path / "init.log"))
        assert done.returncode == 0, done.stdout + done.stderr
        unauthenticated = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
             f"{server.uri}/api/2.0/mlflow/experiments/search?max_results=1"],
            capture_output=True, text=True)
        assert unauthenticated.stdout == "401"  # the server really requires the credentials
        cluster = StandaloneCluster(tmp_path, python, conf_dir).start()
        ui_port = free_port()
        try:
            argv, env = cluster.submit_command(
                str(REPO / "tests" / "user_job.py"),
                conf=("spark.cores.max=2", "spark.ui.enabled=true", f"spark.ui.port={ui_port}"))
            job = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
            environment = None
            deadline = time.monotonic() + 240
            while environment is None and job.poll() is None and time.monotonic() < deadline:
                try:
                    api = f"http://127.0.0.1:{ui_port}/api/v1/applications"
                    with urllib.request.urlopen(api, timeout=2) as reply:
                        [app] = json.load(reply)
                    with urllib.request.urlopen(f"{api}/{app['id']}/environment",
                                                timeout=5) as reply:
                        environment = reply.read().decode()
                except (OSError, ValueError):
                    time.sleep(0.3)
            out, err = job.communicate(timeout=300)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()
            cluster.stop()
            shutil.rmtree(tmp_path / "worker-0", ignore_errors=True)
        assert job.returncode == 0, err[-4000:]
        assert environment is not None and "spark.executorEnv.MLFLOW_TRACKING_URI" in environment
        for text in (environment, out, err, (tmp_path / "init.log").read_text()):
            assert not {s for s in secret_forms(SECRET) if s in text}
        result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
        assert result["tracking_uri"] == server.uri and result["trials"] == 6

        os.environ.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=SECRET)
        try:
            runs = mlflow.MlflowClient(server.uri).search_runs(["0"], max_results=100)
        finally:
            for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                os.environ.pop(name)
        [parent] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(runs) == 7 and len(children) == 6
        assert parent.data.tags.get("runSource") == "hyperoptAutoTracking"
        assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
        assert parent.data.params["actual_parallelism"] == "2"  # 2 workers x 1 core
        assert parent.data.params["parallelism"] == "None"
        # mlflow.log_param inside the objective, on the executors, authenticated too
        executor_pids = {c.data.params["executor_pid"] for c in children}
        assert len(executor_pids) >= 1 and str(result["driver_pid"]) not in executor_pids
    finally:
        server.stop()
