"""Across a real network: test hosts in network namespaces (tests/netcluster.py), each running what
a real node runs, started by its real command: `mlflow server` on the MLflow host, a standalone
master, two workers (1 core each) set up by the init script, and `spark-submit` of an unmodified
job (tests/network_job.py) on a driver host. Needs root; skipped elsewhere with the reason.

Spark's failure detection is lowered for these tests so that a lost host is noticed within a minute:
spark.network.timeout 30 s (checked every 10 s), executor heartbeats every 2 s, the master's worker
timeout 30 s (less is not safe here: a loaded machine delays heartbeats by more than 10 s).
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import netcluster
import pytest
from conftest import SPARK_HOME, VENV_BIN, MlflowServer, init_script, make_node, node_env

REPO = Path(__file__).resolve().parent.parent
JOB = str(REPO / "tests" / "network_job.py")
HOSTS = ("mlflow", "master", "w1", "w2", "driver", "driver2")
WORKERS = ("w1", "w2")
# spark.cores.max: the two workers' cores, so the first fmin waits for the executors the conf
# promises (without it, it counts those registered at that moment: README, Known limits)
SUBMIT_CONF = ("spark.network.timeout=30s", "spark.network.timeoutInterval=10s",
               "spark.executor.heartbeatInterval=2s", "spark.cores.max=2",
               "spark.ui.enabled=false")

WHY_NOT = netcluster.available()
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))


class NetworkHosts:
    """The cluster of test hosts, its node Python and its servers."""

    def __init__(self, root, wheelhouse):
        self.root = root
        self.net = netcluster.NetCluster(HOSTS, root).create()
        self.address = {name: host.address for name, host in self.net.hosts.items()}
        self.python, _ = make_node(root / "node")
        self.conf = {}
        for name in ("master", *WORKERS, "driver", "driver2"):
            conf_dir = root / f"{name}-conf"
            conf_dir.mkdir()
            if name != "master":  # the init script on every node that runs Python
                done = init_script("--python", str(self.python), "--wheelhouse", str(wheelhouse),
                                   "--spark-conf-dir", str(conf_dir), "--log-file",
                                   str(root / "init.log"))
                assert done.returncode == 0, done.stdout + done.stderr
            self.conf[name] = conf_dir
        (self.conf["master"] / "spark-defaults.conf").write_text("spark.worker.timeout 30\n")
        self.master_url = f"spark://{self.address['master']}:7077"
        (root / "mlflow").mkdir()
        self.mlflow = MlflowServer(root / "mlflow", host=self.address["mlflow"], port=5000,
                                   spawn=self.spawner("mlflow"))

    def spawner(self, name):
        return lambda argv, env, log_name: self.net.spawn(name, argv, env, log_name)

    def env(self, name, **extra):
        return node_env(SPARK_HOME=str(SPARK_HOME), SPARK_CONF_DIR=str(self.conf[name]),
                        PYSPARK_PYTHON=str(self.python), SPARK_LOCAL_IP=self.address[name],
                        SPARK_LOCAL_HOSTNAME=self.address[name], SPARK_NO_DAEMONIZE="1",
                        **extra)

    def start(self, timeout=120):
        """The MLflow host's server, the master and the workers, started at the same time."""
        self.mlflow.launch()
        spark_class = str(SPARK_HOME / "bin" / "spark-class")
        self.net.spawn("master", [spark_class, "org.apache.spark.deploy.master.Master", "--host",
                                  self.address["master"], "--port", "7077", "--webui-port",
                                  "8080"], self.env("master"), "master")
        for name in WORKERS:
            self.start_worker(name)
        self.mlflow.wait_until_up(timeout)
        self.wait_for_workers(2, timeout)

    def start_worker(self, name):
        work = self.root / f"{name}-work"
        work.mkdir(exist_ok=True)
        self.net.spawn(name, [str(SPARK_HOME / "bin" / "spark-class"),
                              "org.apache.spark.deploy.worker.Worker", "--host",
                              self.address[name], "--cores", "1", "--memory", "1024M",
                              "--webui-port", "8081", "--work-dir", str(work), self.master_url],
                       self.env(name), name)

    def alive_workers(self):
        try:
            with urllib.request.urlopen(f"http://{self.address['master']}:8080/json/",
                                        timeout=2) as reply:
                state = json.load(reply)
        except (OSError, ValueError):
            return set()
        return {w["host"] for w in state.get("workers", []) if w["state"] == "ALIVE"}

    def wait_for_workers(self, count, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.alive_workers()) >= count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{count} workers did not register; logs in {self.root}")

    def submit(self, host, *job_args, tracking_uri=None, conf=(), experiment=None, script=JOB,
               record=None, env=None):
        """Starts `script` (network_job.py: its args, then a new record dir) on `host` with
        spark-submit (client mode), tracked into `experiment` (a name; default: the record dir's),
        `env` added to its environment; returns (process, record dir, log path)."""
        if record is None:
            record = self.root / f"job-{uuid.uuid4().hex[:8]}"
            record.mkdir()
            job_args = (*job_args, record)
        extra = env or {}
        env = self.env(host, PYSPARK_DRIVER_PYTHON=str(self.python),
                       MLFLOW_TRACKING_URI=tracking_uri or self.mlflow.uri,
                       MLFLOW_EXPERIMENT_NAME=experiment or record.name, **extra)
        env.pop("SPARK_NO_DAEMONIZE")
        argv = [str(VENV_BIN / "spark-submit"), "--master", self.master_url,
                *[arg for c in (*SUBMIT_CONF, *conf) for arg in ("--conf", c)],
                script, *map(str, job_args)]
        process = self.net.spawn(host, argv, env, record.name)
        return process, record, self.root / f"{record.name}.log"

    def run(self, host, *job_args, timeout=300, **options):
        process, record, log = self.submit(host, *job_args, **options)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the job did not end within {timeout} s:\n"
                                 + log.read_text()[-4000:]) from None
        return Job(process.returncode, record, log)

    def stop(self):
        self.mlflow.stop()
        self.net.destroy()


class Job:
    def __init__(self, returncode, record, log=None, output=None):
        self.returncode, self.record = returncode, record
        self.output = log.read_text() if output is None else output
        lines = [line for line in self.output.splitlines() if line.startswith("RESULT ")]
        self.result = json.loads(lines[-1][len("RESULT "):]) if lines else None

    def calls(self):
        """(host, x) of every objective call."""
        path = self.record / "calls"
        return [tuple(line.split()) for line in path.read_text().splitlines()] \
            if path.exists() else []


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, wheelhouse):
    root = tmp_path_factory.mktemp("hosts")
    cluster = NetworkHosts(root, wheelhouse)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def experiment_runs(uri, experiment_name):
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    return client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []


def runs_in(uri, experiment_name):
    """(parents, their trial runs) of the experiment."""
    runs = experiment_runs(uri, experiment_name)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    ids = {p.info.run_id for p in parents}
    return parents, [r for r in runs if r.data.tags.get("mlflow.parentRunId") in ids]


def attempt_runs_in(uri, experiment_name):
    """Runs of a trial's re-run attempts, nested in the trial's run."""
    return [r for r in experiment_runs(uri, experiment_name)
            if "runtime_ml.attempt_of" in r.data.tags]


class LoopbackOnlyServer(MlflowServer):
    """`mlflow server` as started by default: on the driver host's 127.0.0.1 only, so only a
    process on that host can ask it anything."""

    def __init__(self, hosts, port):
        (hosts.root / f"loopback-mlflow-{port}").mkdir()
        super().__init__(hosts.root / f"loopback-mlflow-{port}", host="127.0.0.1", port=port,
                         spawn=hosts.spawner("driver"))
        self.hosts = hosts

    def on_its_host(self, code):
        return subprocess.run(self.hosts.net.hosts["driver"].command(
            [sys.executable, "-c", code]), capture_output=True, text=True, timeout=60,
            env=dict(os.environ, MLFLOW_TRACKING_URI=self.uri))

    def answers(self):
        return self.on_its_host(
            f"import urllib.request; urllib.request.urlopen('{self.uri}/health', timeout=2)"
        ).returncode == 0

    def runs(self, experiment_name):
        """(status, is a child run, params) of each run of the experiment."""
        done = self.on_its_host(
            "import json, mlflow\n"
            "client = mlflow.MlflowClient()\n"
            f"found = client.get_experiment_by_name({experiment_name!r})\n"
            "runs = client.search_runs([found.experiment_id], max_results=1000) if found else []\n"
            "print(json.dumps([(r.info.status, 'mlflow.parentRunId' in r.data.tags, "
            "r.data.params) for r in runs]))")
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


class TrackingLegs:
    """One driver on the driver host running one fmin of 8 x 0.5 s per tracking URI, in order
    (network_job.py's legs: the user points MLFLOW_TRACKING_URI elsewhere between two fmins):
    - "server": the MLflow host's server, as in the seeds' set-up;
    - "localhost": http://localhost:5001, a server on the driver host listening on every address
      (the usual small set-up: `mlflow server --host 0.0.0.0` on the driver node);
    - "loopback": a server on the driver host's 127.0.0.1 only (as `mlflow server` starts);
    - "sqlite": a sqlite file on the driver host.
    One driver for all four saves three Spark applications' start-up."""

    def __init__(self, hosts):
        (hosts.root / "driver-mlflow").mkdir()
        self.everywhere = MlflowServer(hosts.root / "driver-mlflow", host="0.0.0.0", port=5001,
                                       spawn=hosts.spawner("driver"),
                                       reached_at=hosts.address["driver"])
        self.loopback = LoopbackOnlyServer(hosts, 5002)
        self.store = hosts.root / "driver-store.db"
        self.uri = {"server": hosts.mlflow.uri, "localhost": "http://localhost:5001",
                    "loopback": self.loopback.uri, "sqlite": f"sqlite:///{self.store}"}
        self.hosts = hosts

    def run(self):
        for server in (self.everywhere, self.loopback):
            server.launch()
        for server in (self.everywhere, self.loopback):
            server.wait_until_up()
        self.job = self.hosts.run("driver", 8, 0.5, env={
            "NETWORK_JOB_LEGS": json.dumps(list(self.uri.items()))})
        self.experiment = self.job.record.name
        parts = re.split(r"^LEG (\S+)\n", self.job.output, flags=re.M)
        self.legs = {name: Job(self.job.returncode, self.job.record / name, output=text)
                     for name, text in zip(parts[1::2], parts[2::2], strict=False)}
        return self

    def leg(self, name):
        """The leg's Job: its part of the output, its RESULT and its calls; asserted to have
        ended without error."""
        assert list(self.legs) == list(self.uri), self.job.output[-4000:]
        leg = self.legs[name]
        assert leg.returncode == 0 and leg.result and leg.result["error"] is None, \
            leg.output[-4000:]
        return leg

    def stop(self):
        self.loopback.stop()
        self.everywhere.stop()


@pytest.fixture(scope="module")
def tracking_legs(hosts):
    legs = TrackingLegs(hosts)
    try:
        yield legs.run()
    finally:
        legs.stop()


def test_the_seeds_job_on_the_driver_host_tracks_trials_from_both_worker_hosts(hosts,
                                                                                tracking_legs, measured):
    job = tracking_legs.leg("server")
    parents, children = runs_in(hosts.mlflow.uri, tracking_legs.experiment)
    assert len(parents) == 1 and len(children) == 8, job.output[-3000:]
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.params["actual_parallelism"] == "2"  # two worker hosts, 1 core each
    assert {c.info.status for c in children} == {"FINISHED"}
    by_host = Counter(c.data.params["host"] for c in children)
    assert set(by_host) == {hosts.address["w1"], hosts.address["w2"]}, by_host
    assert all("x_seen" in c.data.metrics and "loss" in c.data.metrics for c in children)
    measured(f"scenario a: {job.result['seconds']:.1f} s, trials per host {dict(by_host)}")


def test_a_localhost_tracking_uri_on_the_driver_reaches_executors_on_other_hosts(hosts,
                                                                                 tracking_legs, measured):
    # executors on other hosts get the driver's address instead of their own localhost
    job = tracking_legs.leg("localhost")
    assert (f"log to the MLflow server http://localhost:5001 at the driver's address: "
            f"http://{hosts.address['driver']}:5001") in job.output
    parents, children = runs_in(tracking_legs.everywhere.uri, tracking_legs.experiment)
    assert len(parents) == 1 and len(children) == 8
    assert {c.info.status for c in children} == {"FINISHED"}
    by_host = Counter(c.data.params["host"] for c in children)
    assert set(by_host) <= {hosts.address["w1"], hosts.address["w2"]} and by_host, by_host
    mlflow_seconds = [t["mlflow_seconds"] for t in job.result["trials"]]
    measured(f"scenario b (localhost URI, server on 0.0.0.0): {job.result['seconds']:.1f} s, "
          f"trials per host {dict(by_host)}, objective's MLflow calls "
          f"{max(mlflow_seconds):.2f} s at most")


def test_a_loopback_only_server_is_one_clear_warning_and_no_trial_waits_on_retries(
        tracking_legs, measured):
    job = tracking_legs.leg("loopback")
    warnings = [line for line in job.output.splitlines() if "names this machine's loopback"
                in line]
    assert len(warnings) == 1 and "--host 0.0.0.0" in warnings[0], warnings
    # the objective's own MLflow calls go where stock sends them (the executor's local store),
    # at once; the driver logs every trial run
    assert all(t["state"] == 2 for t in job.result["trials"]), job.result
    mlflow_seconds = [t["mlflow_seconds"] for t in job.result["trials"]]
    assert max(mlflow_seconds) < 30, mlflow_seconds
    runs = tracking_legs.loopback.runs(tracking_legs.experiment)
    assert sorted((status, child) for status, child, _ in runs) == \
        [("FINISHED", False)] + [("FINISHED", True)] * 8
    assert not any("host" in params for _, child, params in runs if child)
    measured(f"scenario b (loopback-only server): {job.result['seconds']:.1f} s, objective's "
          f"MLflow calls {max(mlflow_seconds):.2f} s at most")


def test_a_sqlite_store_on_the_driver_host_is_one_warning_and_driver_side_runs(hosts,
                                                                               tracking_legs):
    job = tracking_legs.leg("sqlite")
    # printed once, in runtime-ml's format or, once MLflow 2.9's sqlite store has set up the root
    # logger, in that one's
    warnings = [line for line in job.output.splitlines()
                if "is a local store that executors on other machines" in line]
    assert len(warnings) == 1 and hosts.address["w1"] in warnings[0], warnings
    assert all(t["state"] == 2 for t in job.result["trials"]), job.result
    parents, children = runs_in(tracking_legs.uri["sqlite"], tracking_legs.experiment)
    assert len(parents) == 1 and len(children) == 8
    assert {c.info.status for c in [*parents, *children]} == {"FINISHED"}
    # the objective's own calls went to each executor's default store, as in stock
    assert not any("host" in c.data.params for c in children)


def wait_for_logging_on(hosts, job_record, address, timeout=180):
    """Until an objective on the host at `address` has logged into its trial's run (so a re-run
    of that trial meets the params of the first attempt)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, children = runs_in(hosts.mlflow.uri, job_record.name)
        if any(c.data.params.get("host") == address for c in children):
            return
        time.sleep(0.5)
    raise AssertionError(f"no objective logged from {address} within {timeout} s")


def accounted_for(hosts, job):
    """What the scenarios with a lost host check: every trial ended, DONE or with an error, the
    objective ran twice only for a trial whose host was lost, and MLflow holds one FINISHED
    parent whose counts match its children, none of them RUNNING."""
    trials = job.result["trials"]
    assert {t["state"] for t in trials} <= {2, 3}, trials
    calls = Counter(x for _, x in job.calls())
    parents, children = runs_in(hosts.mlflow.uri, job.record.name)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == len(trials)
    assert "RUNNING" not in {c.info.status for c in children}, [c.info.status for c in children]
    metrics = parents[0].data.metrics
    assert metrics["total_trials_count"] == len(trials)
    assert metrics.get("successful_trials_count", 0) == sum(t["state"] == 2 for t in trials)
    return calls, children


def test_a_worker_host_killed_mid_fmin_loses_no_trial(hosts, measured):
    process, record, log = hosts.submit("driver", 6, 4.0)
    try:
        wait_for_logging_on(hosts, record, hosts.address["w2"])
        hosts.net.kill_host("w2")
        process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
        hosts.start_worker("w2")
    job = Job(process.returncode, record, log)
    assert job.returncode == 0 and job.result["error"] is None, job.output[-4000:]
    calls, children = accounted_for(hosts, job)
    # the trial whose host died ran again on the other host (Spark re-runs a lost executor's
    # task; stock hyperopt's job per trial does the same), and its second attempt logged into a
    # run of its own inside the trial's run, where its params cannot clash with the first's
    assert all(t["state"] == 2 for t in job.result["trials"]), job.result["trials"]
    rerun = [x for x, n in calls.items() if n > 1]
    assert len(rerun) == 1, calls
    attempts = attempt_runs_in(hosts.mlflow.uri, job.record.name)
    assert len(attempts) == 1 and attempts[0].data.params["host"] == hosts.address["w1"]
    [trial] = [c for c in children if c.info.run_id == attempts[0].data.tags["mlflow.parentRunId"]]
    assert trial.data.params["host"] == hosts.address["w2"]
    assert trial.data.tags["runtime_ml.attempts"] == "2" and trial.info.status == "FINISHED"
    measured(f"scenario d: {job.result['seconds']:.1f} s, states "
          f"{Counter(t['state'] for t in job.result['trials'])}, calls per host "
          f"{Counter(h for h, _ in job.calls())}, objectives run twice "
          f"{sum(n > 1 for n in calls.values())}")
    hosts.wait_for_workers(2)


def test_mlflow_unreachable_from_the_worker_hosts_mid_fmin_keeps_every_trial(hosts, measured):
    process, record, log = hosts.submit("driver", 6, 3.0)
    try:
        wait_for_logging_on(hosts, record, hosts.address["w1"])
        for name in WORKERS:
            hosts.net.unroute(name, hosts.address["mlflow"])
        process.wait(timeout=300)
    finally:
        for name in WORKERS:
            hosts.net.reroute(name, hosts.address["mlflow"])
        if process.poll() is None:
            process.kill()
    job = Job(process.returncode, record, log)
    assert job.returncode == 0 and job.result["error"] is None, job.output[-4000:]
    # the driver still reaches the server: every trial run is complete; trials that started after
    # the cut logged their own calls to their executor's store, as stock does; a trial whose
    # objective was between two MLflow calls when the cut came fails with MLflow's connection
    # error once its capped retries are over
    calls, children = accounted_for(hosts, job)
    for trial in job.result["trials"]:
        assert trial["state"] == 2 or "Max retries exceeded" in str(trial["error"]), trial
    local = [c for c in children if "host" not in c.data.params]
    assert local and "RUNNING" not in {c.info.status for c in children}
    mlflow_seconds = sorted(t["mlflow_seconds"] or 0.0 for t in job.result["trials"])
    failed = sum(t["state"] == 3 for t in job.result["trials"])
    measured(f"scenario e: {job.result['seconds']:.1f} s, {len(local)} of {len(children)} trials "
          f"logged locally, {failed} failed on the cut, objective's MLflow calls took "
          f"{mlflow_seconds[0]:.1f}-{mlflow_seconds[-1]:.1f} s")


def test_mlflow_unreachable_from_the_driver_mid_fmin_changes_no_result(hosts, measured):
    process, record, log = hosts.submit("driver", 6, 3.0)
    try:
        wait_for_logging_on(hosts, record, hosts.address["w1"])
        hosts.net.unroute("driver", hosts.address["mlflow"])
        process.wait(timeout=400)
    finally:
        hosts.net.reroute("driver", hosts.address["mlflow"])
        if process.poll() is None:
            process.kill()
    job = Job(process.returncode, record, log)
    assert job.returncode == 0 and job.result["error"] is None, job.output[-4000:]
    assert len(job.result["trials"]) == 6
    assert all(t["state"] == 2 for t in job.result["trials"]), job.result["trials"]
    stopped = [line for line in job.output.splitlines()
               if "runtime_ml" in line and "WARNING" in line and "MLflow" in line]
    assert len(stopped) == 1, stopped
    measured(f"scenario f: {job.result['seconds']:.1f} s; {stopped[0]}")


def test_a_worker_host_partitioned_mid_fmin_loses_no_trial_and_rejoins(hosts, measured):
    process, record, log = hosts.submit("driver", 6, 4.0)
    try:
        wait_for_logging_on(hosts, record, hosts.address["w2"])
        hosts.net.cut("w2")  # nothing is told: Spark finds out by its timeouts
        process.wait(timeout=300)
    finally:
        hosts.net.restore("w2")
        if process.poll() is None:
            process.kill()
    job = Job(process.returncode, record, log)
    assert job.returncode == 0 and job.result["error"] is None, job.output[-4000:]
    calls, children = accounted_for(hosts, job)
    assert all(t["state"] == 2 for t in job.result["trials"]), job.result["trials"]
    # the partitioned trial ran again on w1 (its first run went on, cut off, and its result was
    # never heard of): as with stock's job per trial
    assert sum(n > 1 for n in calls.values()) >= 1, calls
    measured(f"scenario c: {job.result['seconds']:.1f} s, calls per host "
          f"{Counter(h for h, _ in job.calls())}, objectives run twice "
          f"{sum(n > 1 for n in calls.values())}")
    # restored, the worker registers again (Spark's worker reconnects to the master)
    started = time.monotonic()
    hosts.wait_for_workers(2, timeout=120)
    measured(f"scenario c: w2 alive again {time.monotonic() - started:.0f} s after the job ended")


def test_a_search_whose_driver_host_died_continues_from_another_host_with_resume_on(hosts, measured):
    """The driver host dies (every process, SIGKILL) mid-search; the same job submitted from
    another host with spark.runtimeml.hyperopt.resume=true evaluates only the rest."""
    import mlflow
    from conftest import wait_for_finished_trial_runs

    job = str(REPO / "tests" / "resume_job.py")
    client = mlflow.MlflowClient(hosts.mlflow.uri)
    experiment = f"resume-{uuid.uuid4().hex[:8]}"
    experiment_id = client.create_experiment(experiment)
    records = hosts.root / experiment
    records.mkdir()
    first, _, _ = hosts.submit("driver", records, "first", script=job, record=records,
                               experiment=experiment)
    try:
        wait_for_finished_trial_runs(client, experiment_id, 6, first)
    finally:
        hosts.net.kill_host("driver")
    second, _, log = hosts.submit("driver2", records, "second", script=job, record=records,
                                  experiment=experiment,
                                  conf=("spark.runtimeml.hyperopt.resume=true",))
    second.wait(timeout=300)
    output = log.read_text()
    assert second.returncode == 0, output[-4000:]
    [line] = [x for x in output.splitlines() if "continuing the unfinished search" in x]
    loaded = int(re.search(r"\): (\d+) finished trials", line).group(1))
    assert loaded >= 6, line
    parents, children = runs_in(hosts.mlflow.uri, experiment)
    assert [p.info.status for p in parents] == ["FINISHED"]
    statuses = [c.info.status for c in children]
    assert statuses.count("FINISHED") == 16 and "RUNNING" not in statuses, statuses
    assert parents[0].data.metrics["total_trials_count"] == 16
    # the second driver evaluated only the trials the first one had not finished
    assert sum(name.startswith("second-") for name in os.listdir(records)) == 16 - loaded
    measured(f"scenario h: {loaded} trials loaded from the first driver's search, "
          f"{16 - loaded} evaluated by the second")


def test_dynamic_allocation_scales_each_fmin_up_to_every_slot_of_both_worker_hosts(hosts, measured):
    conf = ("spark.dynamicAllocation.enabled=true",
            "spark.dynamicAllocation.shuffleTracking.enabled=true",
            "spark.dynamicAllocation.initialExecutors=1", "spark.dynamicAllocation.minExecutors=0",
            "spark.dynamicAllocation.maxExecutors=2", "spark.executor.cores=1",
            "spark.dynamicAllocation.executorIdleTimeout=5s",
            "spark.dynamicAllocation.schedulerBacklogTimeout=1s")
    job = hosts.run("driver", 6, 2.0, conf=conf, script=str(REPO / "tests" / "autoscale_job.py"))
    assert job.returncode == 0 and job.result is not None, job.output[-4000:]
    workers = {hosts.address["w1"], hosts.address["w2"]}
    # runtime-ml sizes the parallelism to maxExecutors x slots, so pending trials make Spark ask
    # for the second executor; after the first fmin Spark releases both, and the second fmin
    # scales up from none again
    assert job.result["released_after"] is not None, job.result
    assert job.result["fmins"][1]["registered_at_start"] == 0, job.result
    for fmin_report in job.result["fmins"]:
        assert set(fmin_report["trials_per_host"]) == workers, job.result
    parents, _ = runs_in(hosts.mlflow.uri, job.record.name)
    assert [p.data.params["actual_parallelism"] for p in parents] == ["2", "2"]
    for index, fmin_report in enumerate(job.result["fmins"]):
        measured(f"scenario g, fmin {index + 1}: {fmin_report['seconds']:.1f} s for 6 x 2 s, "
              f"executors at its start {fmin_report['registered_at_start']}, all slots busy "
              f"{max(fmin_report['first_start_per_host'].values()):.1f} s after the call, trials "
              f"per host {fmin_report['trials_per_host']}")
    measured(f"scenario g: executors released {job.result['released_after']:.1f} s after fmin 1")
