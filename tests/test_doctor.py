"""`runtime-ml doctor`: the same story the runtime tells, from the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "runtime-ml")


def doctor(*args, env=None):
    full_env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", **(env or {}))
    return subprocess.run([CLI, "doctor", *args], capture_output=True, text=True, env=full_env,
                          timeout=300)


def test_without_master_it_inspects_no_cluster_and_reads_the_conf_file(tmp_path):
    (tmp_path / "spark-defaults.conf").write_text(
        "# admin settings\nspark.databricks.mlflow.trackHyperopt.enabled   false\n"
    )
    done = doctor(env={"SPARK_CONF_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "cluster: not inspected" in done.stdout
    assert (f"MLflow tracking: off (from conf file {tmp_path / 'spark-defaults.conf'}; "
            "key spark.databricks.mlflow.trackHyperopt.enabled)") in done.stdout
    assert "startup hook: installed" in done.stdout


def test_tracking_defaults_to_on_and_a_bad_value_is_named(tmp_path):
    assert "MLflow tracking: on (from default;" in doctor(env={"SPARK_CONF_DIR": str(tmp_path)}).stdout
    (tmp_path / "spark-defaults.conf").write_text(
        "spark.databricks.mlflow.trackHyperopt.enabled=yes\n")
    report = json.loads(doctor("--json", env={"SPARK_CONF_DIR": str(tmp_path)}).stdout)
    assert report["tracking"]["enabled"] is True
    assert "bad value 'yes'" in report["tracking"]["source"]


def test_resume_is_off_by_default_and_says_where_it_was_turned_on(tmp_path):
    assert ("resume of unfinished searches: off (from default; key "
            "spark.runtimeml.hyperopt.resume)") in doctor(env={"SPARK_CONF_DIR": str(tmp_path)}).stdout
    (tmp_path / "spark-defaults.conf").write_text("spark.runtimeml.hyperopt.resume true\n"
                                                  "spark.databricks.mlflow.trackHyperopt.enabled "
                                                  "false\n")
    done = doctor(env={"SPARK_CONF_DIR": str(tmp_path)})
    assert (f"resume of unfinished searches: on (from conf file {tmp_path / 'spark-defaults.conf'}"
            "; key spark.runtimeml.hyperopt.resume); needs MLflow tracking on") in done.stdout


def test_bad_conf_argument_is_one_clear_line():
    done = doctor("--conf", "spark.task.cpus")
    assert done.returncode == 2
    assert done.stderr.strip() == ("runtime-ml: --conf 'spark.task.cpus': expected KEY=VALUE, "
                                   "e.g. --conf spark.task.cpus=2")


def test_local_cluster_story_matches_the_runtime(tmp_path):
    done = doctor("--master", "local-cluster[2,2,1024]", "--conf", "spark.task.cpus=2",
                  "--conf", "spark.databricks.mlflow.trackHyperopt.enabled=false", "--json",
                  env={"SPARK_CONF_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["cluster"]["slots"] == 2
    assert len(report["cluster"]["executors"]) == 2
    assert report["decisions"]["SparkTrials()"]["parallelism"] == 2
    explicit = report["decisions"]["SparkTrials(parallelism=16)"]
    assert explicit["parallelism"] == 2
    assert any("parallelism=16 is more than the cluster can run at once" in text
               for level, text in explicit["reasons"] if level == "warning")
    assert report["tracking"] == {"enabled": False, "source": "--conf", "raw": "false"}
    assert report["resume"] == {"enabled": False, "source": "default", "raw": None}


def test_it_tells_admins_of_spark_4_1_about_unix_sockets_for_python_workers():
    from runtime_ml.doctor import UNIX_SOCKETS, python_workers_line

    assert python_workers_line("3.5.0", None) is None  # TCP is the only way there
    advice = python_workers_line("4.1.0", None)
    assert "over TCP" in advice and f"{UNIX_SOCKETS} true" in advice
    assert python_workers_line("4.3.0", "false") == advice
    assert python_workers_line("4.3.0", "True") == (
        f"  Python workers: over Unix domain sockets ({UNIX_SOCKETS} true)")
