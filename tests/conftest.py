import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Executors must run this interpreter, and everything stays on the loopback interface.
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
# Objectives defined in test modules are pickled by reference: workers must import them too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH")) if p
)


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
    import sysconfig

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
