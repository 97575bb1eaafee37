import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The test process's environment. Not in a PySpark worker: a worker that unpickles an objective
# defined in a test module imports that module, and with it this one, in the middle of a trial
# whose environment (MLflow's tracking URI above all) must stay as the driver made it.
if "PYTHON_WORKER_FACTORY_SECRET" not in os.environ:
    # runtime-ml's own internal errors raise in every test unless a test says otherwise.
    os.environ.setdefault("RUNTIME_ML_STRICT", "1")
    # Executors must run this interpreter, and everything stays on the loopback interface.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # MLflow 3 defaults to ./mlflow.db: keep every test's runs out of the working tree.
    _MLFLOW_HOME = Path(tempfile.mkdtemp(prefix="runtime-ml-tests-mlflow-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_MLFLOW_HOME / 'default.db'}"
    # Objectives defined in test modules are pickled by reference: workers must import them too.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH")) if p
    )


MEASURED = []  # what the tests measured, in the run's summary (the closing notes quote it)

# `make test` runs the suite in two pytest-xdist workers, a module at a time in collection order,
# each worker taking the next module when it is done with one. The modules that take longest come
# first (this order: their times on one worker, newest pin, longest first), so that the run ends on
# short modules and neither worker waits long for the other.
FIRST = ("test_network.py", "test_cluster_start.py", "test_fidelity.py", "test_connect.py",
         "test_cluster.py", "test_tracking.py", "test_dispatch.py", "test_reliability.py",
         "test_hyperopt_suite.py", "test_fmin_paths.py", "test_resume.py", "test_cancellation.py",
         "test_proposals.py", "test_doctor.py")


def pytest_configure(config):
    # Every JVM the suite starts (Spark drivers and executors, masters, workers, Connect servers)
    # compiles with the JIT's first tier only: they live seconds and run tiny jobs, and the second
    # tier's compilations cost a third of a JVM's CPU here (a local session's start and first jobs:
    # 16 s of CPU -> 10 s), which the two workers of `make test` share on two cores. Not in the
    # benchmarks, which measure what users meet.
    os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:TieredStopAtLevel=1")


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))


@pytest.fixture
def measured(request):
    """`measured(line)`: the line goes into the "measured" section at the end of the run (from a
    pytest-xdist worker too: it travels in the test's report)."""
    return lambda line: request.node.user_properties.append(("measured", line))


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        MEASURED.extend(value for key, value in report.user_properties if key == "measured")


def pytest_terminal_summary(terminalreporter):
    if MEASURED:
        terminalreporter.section("measured")
        for line in MEASURED:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def default_store():
    """The suite's default MLflow store (MLFLOW_TRACKING_URI above) made before the first test:
    MLflow 2.9 sets up the process's logging when it makes a sqlite store's tables (alembic's
    fileConfig replaces the root logger's handlers), which drops the log records of whichever test
    happens to make the store, and that depends on which modules a pytest-xdist worker ran before."""
    import mlflow

    mlflow.MlflowClient().search_experiments(max_results=1)


@pytest.fixture(scope="session")
def spark():
    """The suite's one local[2] session (Spark start-up costs 10-20 s here)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("runtime-ml-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def active():
    """runtime-ml activated for one test, and its activation state restored afterwards."""
    import runtime_ml

    was_active = runtime_ml.is_active()
    runtime_ml.activate()
    yield
    if not was_active:
        runtime_ml.deactivate()


@pytest.fixture
def runtime_log(caplog):
    caplog.set_level(logging.INFO, logger="runtime_ml")
    return caplog


def run_python(code, python=sys.executable, env=None, timeout=180):
    """Run `code` in a fresh interpreter; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("RUNTIME_ML_DISABLED", None)
    full_env.update(env or {})
    return subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=str(REPO),
    )


@pytest.fixture(scope="session")
def make_bare_python(tmp_path_factory):
    """Makes fresh venvs with no hook that see this environment's packages and the repo.

    Lets tests install the real .pth hook without touching the suite's own interpreter.
    """
    return lambda: _bare_python(tmp_path_factory.mktemp("bare-venv"))


def _bare_python(root):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    our_site = sysconfig.get_paths()["purelib"]
    # Plain path lines: the parent's site-packages (its .pth files, including its own hook, are
    # not processed this way) and the repo, for runtime_ml itself.
    Path(purelib, "deps.pth").write_text(f"{REPO}\n{our_site}\n")
    return str(python)


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 with a sqlite store; stopped by its PID."""

    def __init__(self, root, admin_password=None, host="127.0.0.1", port=None, spawn=None,
                 reached_at=None):
        """With `admin_password`, MLflow's basic-auth app: every request needs admin's password.
        `host` is the address it listens on, `reached_at` the one this process reaches it at
        (default: `host`), and `spawn(argv, env, log_name)` starts it elsewhere (on a test host:
        netcluster.NetCluster.spawn)."""
        self.port = port or free_port()
        self.host = host
        self.uri = f"http://{reached_at or host}:{self.port}"
        self.root = root
        self.admin_password = admin_password
        self.spawn = spawn
        self.process = None

    def start(self, timeout=120):
        return self.launch().wait_until_up(timeout)

    def launch(self):
        """Starts the server's process (without waiting for it to answer: wait_until_up)."""
        mlflow_cli = str(Path(sys.executable).parent / "mlflow")
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        auth = []
        if self.admin_password is not None:
            (self.root / "auth.ini").write_text(
                "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                f"database_uri = sqlite:///{self.root / 'auth.db'}\nadmin_username = admin\n"
                f"admin_password = {self.admin_password}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
            env.update(MLFLOW_AUTH_CONFIG_PATH=str(self.root / "auth.ini"),
                       MLFLOW_FLASK_SERVER_SECRET_KEY=os.urandom(16).hex())
            auth = ["--app-name", "basic-auth"]
        argv = [mlflow_cli, "server", *auth, "--host", self.host, "--port", str(self.port),
                "--workers", "1", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                "--default-artifact-root", str(self.root / "artifacts")]
        if self.spawn is not None:
            self.process = self.spawn(argv, env, "mlflow-server")
        else:
            self.log = open(self.root / "server.log", "ab")
            self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                            env=env, start_new_session=True)
        return self

    def wait_until_up(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not start; see its log in {self.root}")

    def answers(self):
        """Whether /health answers, asked from here."""
        import urllib.request

        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=2):
                return True
        except OSError:
            return False

    def stop(self):
        import signal

        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # uvicorn's worker is in the group
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()


def wait_for_finished_trial_runs(client, experiment_id, count, process, timeout=240):
    """Until `count` trial runs of the experiment are FINISHED, while `process` (a driver) runs."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        finished = client.search_runs([experiment_id], "attributes.status = 'FINISHED'")
        if sum("mlflow.parentRunId" in run.data.tags for run in finished) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} finished trial runs before the driver ended or "
                         f"{timeout} s")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@pytest.fixture
def tracked(mlflow_server, spark):
    """The suite's MLflow server as the tracking URI, a fresh experiment, and no leftover run."""
    import uuid

    import mlflow

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID")}
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.uri)
    experiment = mlflow.set_experiment(f"test-{uuid.uuid4().hex[:8]}")
    spark.conf.unset("spark.databricks.mlflow.trackHyperopt.enabled")
    yield mlflow.MlflowClient(mlflow_server.uri), experiment.experiment_id
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)
    # set_experiment has no public inverse; the next test must not inherit this experiment.
    mlflow.tracking.fluent._active_experiment_id = None
    for name, value in saved_env.items():  # mlflow mirrors both into os.environ
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value

# ------------------------------------------------------------------ cluster nodes

INIT_SCRIPT = str(REPO / "init_scripts" / "install-runtime-ml.sh")
SPARK_HOME = Path(__import__("pyspark").__file__).parent


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_env(**extra):
    """The environment of a node: nothing of this suite's PYTHONPATH (the repo's runtime_ml)."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "SPARK_CONF_DIR", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    env.update(extra)
    return env


def node_imports(python, code, cwd):
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=node_env())


def init_script(*args, env=None):
    full_env = node_env(**(env or {}))
    return subprocess.run(["bash", INIT_SCRIPT, *args], capture_output=True, text=True,
                          env=full_env, timeout=600)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory):
    """A directory holding runtime-ml's wheel, built once per run: pytest-xdist's workers share it
    (two builds at once would collide in the source tree's build/ directory)."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # the run's directory, above each worker's own
    directory = root / "wheelhouse"
    with open(root / "wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not directory.exists():
            building = Path(tempfile.mkdtemp(dir=root))
            done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                                   "--no-build-isolation", "-q", "-w", str(building), str(REPO)],
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stdout + done.stderr
            building.rename(directory)
    return directory


def make_node(root):
    """A fresh venv (with pip) that sees the suite's dependencies but not runtime-ml itself."""
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = root / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("runtime_ml", "__editable__")) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    Path(purelib, "deps.pth").write_text(f"{deps}\n")
    conf_dir = root / "spark-conf"
    conf_dir.mkdir()
    return python, conf_dir


# ------------------------------------------------------------------ shared by the test modules
KEY = "spark.databricks.mlflow.trackHyperopt.enabled"  # the admins' tracking switch
VENV_BIN = Path(sys.executable).parent


def fmin(spark, fn, space, max_evals, parallelism=2, algo=None, seed=0, trials=None, within=None,
         before=None, **kwargs):
    """The suite's one fmin runner: a SparkTrials fmin on `spark` (rand.suggest unless `algo`),
    on `trials` or a new SparkTrials (`trials_timeout` is its timeout); returns (trials, best) and
    raises what the fmin raises. With `within` (seconds), the fmin runs in a thread of its own,
    after `before()` there, and one that has not returned by then fails the test
    (interleavings.fmin_within)."""
    import hyperopt
    import numpy as np
    from interleavings import fmin_within

    if trials is None:
        trials = hyperopt.SparkTrials(parallelism=parallelism, spark_session=spark,
                                      timeout=kwargs.pop("trials_timeout", None))
    arguments = dict(fn=fn, space=space, algo=algo or hyperopt.rand.suggest, max_evals=max_evals,
                     rstate=np.random.default_rng(seed), show_progressbar=False, **kwargs)
    if within is None:
        assert before is None, "before= needs within="
        return trials, hyperopt.fmin(trials=trials, **arguments)
    how, value = fmin_within(within, trials, before=before, **arguments)
    if how == "raised":
        raise value
    return trials, value


def runs_of(client, experiment_id):
    """(parent runs, nested runs) of an experiment."""
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def leaked_threads(before=frozenset()):
    """runtime-ml's threads alive now but not `before` (threading.enumerate() before the fmin: a
    test before it may have left tracking threads waiting on a server it killed)."""
    return [t.name for t in threading.enumerate()
            if t.name.startswith("runtime-ml-") and t not in before]


def tracking_warnings(log):
    """runtime-ml's warnings about MLflow, from a caplog."""
    return [r.getMessage() for r in log.records
            if r.levelno == logging.WARNING and "MLflow" in r.getMessage()]


class StandaloneCluster:
    """A standalone master and two workers (1 core each by default) on 127.0.0.1, each stopped by
    its PID. With `pinned`, worker i and its executors run on CPU i only (taskset)."""

    def __init__(self, root, python, conf_dir, cores=1, pinned=False):
        self.root = root
        self.cores = cores
        self.pinned = pinned
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.env = node_env(SPARK_HOME=str(SPARK_HOME), SPARK_CONF_DIR=str(conf_dir),
                            PYSPARK_PYTHON=str(python), SPARK_LOCAL_IP="127.0.0.1",
                            SPARK_NO_DAEMONIZE="1")
        self.processes = []

    def _spawn(self, name, *args, cpu=None):
        log = open(self.root / f"{name}.log", "wb")
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        self.processes.append(subprocess.Popen(
            [*pin, str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=log,
            stderr=subprocess.STDOUT, env=self.env, start_new_session=True))

    def start(self, timeout=120):
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))
        for index in range(2):
            work = self.root / f"worker-{index}"
            work.mkdir()
            self._spawn(f"worker-{index}", "org.apache.spark.deploy.worker.Worker",
                        "--host", "127.0.0.1", "--cores", str(self.cores), "--memory", "1024M",
                        "--webui-port", str(free_port()), "--work-dir", str(work), self.url,
                        cpu=index if self.pinned else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/",
                                            timeout=2) as reply:
                    state = json.load(reply)
                if sum(w["state"] == "ALIVE" for w in state.get("workers", [])) == 2:
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"standalone cluster did not come up; logs in {self.root}")

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def submit_command(self, script, *args, conf=(), env=None):
        """spark-submit's argv and environment for `script` (2 cores unless `conf` says)."""
        full_env = dict(self.env, PYSPARK_DRIVER_PYTHON=self.env["PYSPARK_PYTHON"], **(env or {}))
        full_env.pop("SPARK_NO_DAEMONIZE")
        conf = conf or ("spark.cores.max=2",)
        argv = [str(VENV_BIN / "spark-submit"), "--master", self.url, "--conf",
                "spark.ui.enabled=false", *[arg for c in conf for arg in ("--conf", c)], script,
                *args]
        return argv, full_env

    def submit(self, script, *conf, args=(), env=None):
        argv, full_env = self.submit_command(script, *args, conf=conf, env=env)
        return subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=600)
