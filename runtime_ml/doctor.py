"""`runtime-ml doctor`: what runtime-ml would do on this machine and cluster, and why.

Creates nothing unless asked: without --master it reads only files and this interpreter; with
--master (and --conf) it starts a SparkSession to read the cluster, then stops it.
"""

import os
import sys
from typing import Any, Dict, Optional

from runtime_ml import conf
from runtime_ml.compat import versions
from runtime_ml.driver import session
from runtime_ml.driver.cluster import EXECUTOR_WAIT_SECONDS, read_cluster_facts
from runtime_ml.driver.parallelism import decide_parallelism
from runtime_ml.startup import hook

ADAPTIVE_EXAMPLE_ALGO = "hyperopt.tpe"
UNIX_SOCKETS = "spark.python.unix.domain.socket.enabled"


def package_versions():
    from importlib.metadata import PackageNotFoundError, version

    found: dict = {}
    for name in ("runtime-ml", "hyperopt", "pyspark", "mlflow", "py4j", "cloudpickle"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    found["python"] = sys.version.split()[0]
    return found


def hook_state():
    import sysconfig

    path = os.path.join(sysconfig.get_paths()["purelib"], hook.PTH_NAME)
    from runtime_ml.startup.pyspark_zips import redundant_zips

    installed = os.path.exists(path) and open(path).read() == hook.pth_line(redundant_zips())
    return {"installed": installed, "path": path, "python": sys.executable}


def flag_state(setting, session_conf=None, cli_conf=None):
    """A boolean Spark conf and where it comes from: --conf, the session, the conf file, or its
    default."""
    key = setting.name
    defaults_path = conf.spark_defaults_path()
    file_values = conf.read_defaults_file(defaults_path) if defaults_path else None
    if cli_conf and key in cli_conf:
        raw, source = cli_conf[key], "--conf"
    elif session_conf is not None and session_conf.get(key) is not None:
        raw = session_conf[key]
        from_file = file_values is not None and file_values.get(key) == raw
        source = f"conf file {defaults_path}" if from_file else "session"
    elif file_values is not None and key in file_values:
        raw, source = file_values[key], f"conf file {defaults_path}"
    else:
        return {"enabled": setting.default, "source": "default", "raw": None}
    parsed = conf.parse_spark_bool(raw)
    if parsed is None:
        return {"enabled": setting.default, "raw": raw,
                "source": f"default (bad value {raw!r} in {source})"}
    return {"enabled": parsed, "source": source, "raw": raw}


def diagnose(master: Optional[str] = None, conf_pairs: Optional[Dict[str, str]] = None,
             parallelism: int = 16, remote: Optional[str] = None) -> Dict[str, Any]:
    report = {"versions": package_versions(), "hook": hook_state(),
              "disabled": conf.runtime_disabled(), "cluster": None, "decisions": {},
              "remote": remote}
    cli_conf = dict(conf_pairs or {})
    session_conf = None
    if master or remote:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.remote(remote) if remote else \
            SparkSession.builder.master(str(master)).config("spark.ui.enabled", "false")
        builder = builder.appName("runtime-ml doctor")
        for key, value in cli_conf.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        if not remote:
            spark.sparkContext.setLogLevel("ERROR")
        try:
            facts = read_cluster_facts(spark, wait_seconds=EXECUTOR_WAIT_SECONDS)
            session_conf = {setting.name: spark.conf.get(setting.name, None)
                            for setting in (conf.TRACK_HYPEROPT, conf.RESUME)}
            report["unix_sockets"] = session.conf_get(spark, UNIX_SOCKETS)
        finally:
            spark.stop()
        report["cluster"] = facts.as_dict()
        for label, requested in (("SparkTrials()", None),
                                 (f"SparkTrials(parallelism={parallelism})", parallelism)):
            decision = decide_parallelism(requested, None, ADAPTIVE_EXAMPLE_ALGO, facts.slot_facts())
            report["decisions"][label] = {
                "parallelism": decision.parallelism,
                "reasons": [[r.level, r.text] for r in decision.reasons],
            }
    report["tracking"] = flag_state(conf.TRACK_HYPEROPT, session_conf, cli_conf)
    report["resume"] = flag_state(conf.RESUME, session_conf, cli_conf)
    return report


def python_workers_line(spark_version: Optional[str], unix_sockets: Optional[str]) -> Optional[str]:
    """How executors reach their Python workers, and on Spark 4.1+ over TCP what short trials
    gain from Unix domain sockets (benchmarks/README.md, "Spark Connect at its floor"); None
    before Spark 4.1, where TCP is the only way."""
    if not versions.python_workers_take_unix_sockets(spark_version):
        return None
    if (unix_sockets or "").strip().lower() == "true":
        return f"  Python workers: over Unix domain sockets ({UNIX_SOCKETS} true)"
    return (f"  Python workers: over TCP, where each task's input can wait 40 ms (Nagle's algorithm "
            f"and a delayed acknowledgement); short trials run faster with {UNIX_SOCKETS} true in "
            "spark-defaults.conf (README, For admins)")


CONNECT_STORY = (
    "  Spark Connect: SparkTrials works with zero code change; each trial is a one-task DataFrame "
    "job under the fmin's operation tag (timeout and cancel interrupt it), the objective is sent "
    "once per fmin as a session artifact, and the slots come from the conf (Connect shows no "
    "executors)")


def render(report: Dict[str, Any]) -> str:
    lines = []
    versions = report["versions"]
    lines.append("runtime-ml doctor")
    lines.append("  versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items()))
    hook_info = report["hook"]
    if hook_info["installed"]:
        lines.append(f"  startup hook: installed ({hook_info['path']})")
    else:
        lines.append(f"  startup hook: NOT installed in {hook_info['python']} "
                     "(run: runtime-ml install-hook)")
    if report["disabled"]:
        lines.append(f"  runtime-ml: DISABLED by {conf.DISABLED.name}")
    tracking = report["tracking"]
    lines.append(f"  MLflow tracking: {'on' if tracking['enabled'] else 'off'} "
                 f"(from {tracking['source']}; key {conf.TRACK_HYPEROPT.name})")
    resume = report["resume"]
    lines.append(f"  resume of unfinished searches: {'on' if resume['enabled'] else 'off'} "
                 f"(from {resume['source']}; key {conf.RESUME.name})"
                 + ("; needs MLflow tracking on" if resume["enabled"] and not tracking["enabled"]
                    else ""))
    facts = report["cluster"]
    if facts is None:
        lines.append("  cluster: not inspected (pass --master, e.g. --master 'local-cluster[2,2,1024]', "
                     "or --remote sc://host:15002)")
        return "\n".join(lines)
    over = f" over Spark Connect ({report['remote']})" if report.get("remote") else ""
    lines.append(f"cluster: {facts['master']} ({facts['master_kind']}){over}, Spark "
                 f"{facts['spark_version']}")
    if report.get("remote"):
        lines.append(CONNECT_STORY)
    for executor in facts["executors"]:
        gpus = ",".join(executor["gpus"]) or "-"
        lines.append(f"  executor {executor['id']}: {executor['cores']} cores, GPUs {gpus}")
    lines.append(f"  spark.task.cpus: {facts['task_cpus']}; executor cores: {facts['executor_cores']}")
    if facts["task_gpus"]:
        lines.append(f"  GPUs: {facts['executor_gpus']:g} per executor, {facts['task_gpus']:g} per task")
    if facts["dynamic_allocation"]:
        lines.append(f"  dynamic allocation: on (min {facts['min_executors']}, max "
                     f"{facts['max_executors'] or 'unbounded'}); potential slots "
                     f"{facts['potential_slots']}")
    else:
        lines.append("  dynamic allocation: off")
    lines.append(f"  task slots now: {facts['slots']} ({facts['slots_source']})")
    workers = python_workers_line(facts["spark_version"], report.get("unix_sockets"))
    if workers is not None:
        lines.append(workers)
    for note in facts["notes"]:
        lines.append(f"  note: {note}")
    lines.append("parallelism:")
    for label, decision in report["decisions"].items():
        lines.append(f"  {label} -> {decision['parallelism']}")
        for level, text in decision["reasons"]:
            lines.append(f"    {level}: {text}")
    return "\n".join(lines)
