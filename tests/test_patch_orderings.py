"""Every import/patch ordering, each in a fresh interpreter (as in ddtrace's patch tests)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_python

RUNTIME_ML_CLI = str(Path(sys.executable).parent / "runtime-ml")

# Printed by each scenario: the state of the patch as the user's code would see it.
REPORT = """
import hyperopt, hyperopt.spark, json, runtime_ml, sys
from runtime_ml.patching import ORIGINAL_ATTR
method = hyperopt.spark.SparkTrials.__dict__["fmin"]
original = getattr(method, ORIGINAL_ATTR, None)
print(json.dumps({
    "patched": original is not None,
    "double_wrapped": original is not None and hasattr(original, ORIGINAL_ATTR),
    "fmin_untouched": hyperopt.fmin is sys.modules["hyperopt.fmin"].fmin is hyperopt.spark.fmin,
    "name": method.__name__,
    "doc_kept": method.__doc__ == (original or method).__doc__,
}))
"""


@pytest.fixture(scope="module")
def plain_python(make_bare_python):
    """An interpreter without the startup hook, so each scenario controls the order itself."""
    return make_bare_python()


def report(python, code, **kwargs):
    done = run_python(textwrap.dedent(code) + REPORT, python=python, **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_before_activate_is_patched_once(plain_python):
    state = report(plain_python, """
        from hyperopt import fmin, SparkTrials
        import runtime_ml
        assert runtime_ml.activate()
    """)
    assert state == {"patched": True, "double_wrapped": False, "fmin_untouched": True,
                     "name": "fmin", "doc_kept": True}


def test_activate_before_import_patches_on_import(plain_python):
    state = report(plain_python, """
        import sys, runtime_ml
        runtime_ml.activate()
        assert "hyperopt" not in sys.modules
        from hyperopt import fmin, SparkTrials
        assert SparkTrials is sys.modules["hyperopt.spark"].SparkTrials
    """)
    assert state["patched"] and not state["double_wrapped"] and state["fmin_untouched"]


def test_activating_twice_is_a_no_op(plain_python):
    state = report(plain_python, """
        import runtime_ml, hyperopt.spark
        runtime_ml.activate()
        first = hyperopt.spark.SparkTrials.__dict__["fmin"]
        runtime_ml.activate()
        from runtime_ml.driver import patch
        from runtime_ml.startup import hook
        patch.patch_module(hyperopt.spark)
        hook.install()
        assert hyperopt.spark.SparkTrials.__dict__["fmin"] is first
        assert sum(isinstance(f, hook.HyperoptImportHook) for f in __import__("sys").meta_path) == 1
    """)
    assert state["patched"] and not state["double_wrapped"]


def test_deactivate_restores_the_identical_original_and_reactivate_works(plain_python):
    state = report(plain_python, """
        import hyperopt.spark
        original = hyperopt.spark.SparkTrials.__dict__["fmin"]
        import runtime_ml
        runtime_ml.activate()
        assert hyperopt.spark.SparkTrials.__dict__["fmin"] is not original
        runtime_ml.deactivate()
        assert hyperopt.spark.SparkTrials.__dict__["fmin"] is original
        assert not runtime_ml.is_active()
        runtime_ml.deactivate()
        assert hyperopt.spark.SparkTrials.__dict__["fmin"] is original
        runtime_ml.activate()
        assert hyperopt.spark.SparkTrials.__dict__["fmin"].__wrapped__ is original
    """)
    assert state["patched"] and not state["double_wrapped"]


def test_deactivate_before_import_leaves_hyperopt_unpatched(plain_python):
    state = report(plain_python, """
        import runtime_ml
        runtime_ml.activate()
        runtime_ml.deactivate()
    """)
    assert not state["patched"]


def test_kill_switch_keeps_hyperopt_stock(plain_python):
    state = report(plain_python, """
        import runtime_ml
        assert runtime_ml.activate() is False
    """, env={"RUNTIME_ML_DISABLED": "1"})
    assert not state["patched"]


@pytest.fixture(scope="module")
def hooked_python(make_bare_python):
    """A bare venv with the real hook installed by the real CLI."""
    bare_python = make_bare_python()
    done = run_python(
        "from runtime_ml.cli import main; "
        f"raise SystemExit(main(['install-hook', '--python', {bare_python!r}]))"
    )
    assert done.returncode == 0, done.stderr
    yield bare_python
    run_python(
        f"from runtime_ml.cli import main; main(['uninstall-hook', '--python', {bare_python!r}])"
    )


def test_installed_hook_patches_plain_user_code(hooked_python):
    state = report(hooked_python, "from hyperopt import fmin, tpe, hp, SparkTrials")
    assert state["patched"] and not state["double_wrapped"] and state["fmin_untouched"]


def test_installed_hook_patches_submodule_first_imports(hooked_python):
    state = report(hooked_python, "from hyperopt.fmin import fmin")
    assert state["patched"]


def test_installed_hook_imports_nothing_heavy_in_processes_without_hyperopt(hooked_python):
    done = run_python(
        """
        import sys, json
        heavy = sorted({m.split(".")[0] for m in sys.modules} & {"hyperopt", "mlflow", "pyspark",
                       "py4j", "numpy", "cloudpickle", "logging", "importlib.metadata"})
        waiting = [type(f).__name__ for f in sys.meta_path if "RuntimeMl" in type(f).__name__]
        print(json.dumps({"heavy": heavy, "waiting": waiting,
                          "runtime_ml": sorted(m for m in sys.modules if m.startswith("runtime_ml"))}))
        """,
        python=hooked_python,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"heavy": [], "waiting": ["RuntimeMlBootstrap"], "runtime_ml": []}


def test_installed_hook_honours_kill_switch(hooked_python):
    state = report(hooked_python, "import hyperopt", env={"RUNTIME_ML_DISABLED": "1"})
    assert not state["patched"]


def test_unsupported_hyperopt_is_left_unpatched_with_one_clear_line(plain_python):
    done = run_python(python=plain_python, code="""
        import logging, sys, types
        logging.basicConfig(level=logging.WARNING, stream=sys.stdout,
                            format="%(levelname)s %(name)s: %(message)s")
        from runtime_ml.driver import patch
        fake = types.ModuleType("hyperopt.spark")
        fake.SparkTrials = type("SparkTrials", (), {})
        assert patch.patch_module(fake) is False
        assert "fmin" not in fake.SparkTrials.__dict__
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "WARNING runtime_ml: this hyperopt has no SparkTrials.fmin to patch; SparkTrials left "
        "unpatched."
    ]


def test_version_parsing_orders_releases():
    from runtime_ml.compat.versions import version_tuple

    assert version_tuple("0.1.2") < (0, 2, 7) <= version_tuple("0.2.7") < version_tuple("0.3.0rc1")
    assert version_tuple("4.0.0.dev1") == (4, 0, 0) and version_tuple("3.5") == (3, 5, 0)


def test_cli_refuses_a_missing_interpreter_in_one_line():
    done = subprocess.run(
        [RUNTIME_ML_CLI, "install-hook", "--python", "/no/such/python"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "runtime-ml: no such Python interpreter: /no/such/python"


def test_cli_install_and_uninstall_are_idempotent_and_say_what_they_did(make_bare_python):
    bare_python = make_bare_python()

    def cli(*args):
        done = subprocess.run([RUNTIME_ML_CLI, *args, "--python", bare_python], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert cli("install-hook").startswith("runtime-ml hook installed: ")
    assert cli("install-hook").startswith("runtime-ml hook already installed: ")
    assert cli("uninstall-hook").startswith("runtime-ml hook removed: ")
    assert cli("uninstall-hook").startswith("runtime-ml hook not installed")
