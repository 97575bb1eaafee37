"""The support matrix and which path each version takes (runtime_ml/compat/versions.py).

The suite runs twice in CI: on the newest pins (`make test`) and the oldest (`make test-compat`), so
each "installed version" test below exercises one side of every guard on each run.
"""

import inspect
import logging
import re
import sys
import threading
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import REPO, run_python

from runtime_ml.compat import hyperopt_private, mlflow_private, spark_trials, versions

INSTALLED = {name: version(name) for name in versions.SUPPORTED}


def test_the_matrix_is_what_setup_py_declares():
    text = (REPO / "setup.py").read_text()
    for name, specifiers in versions.SUPPORTED.items():
        assert f'"{name}{specifiers}"' in text, name


def test_the_installed_versions_are_inside_the_matrix():
    for name, found in INSTALLED.items():
        assert versions.support_problem(name, found) is None, (name, found)


@pytest.mark.parametrize("name, found, problem", [
    ("hyperopt", "0.1.2", "hyperopt 0.1.2 is older than the supported 0.2.7; "
                          "SparkTrials left unpatched"),
    ("hyperopt", "0.2.7", None), ("hyperopt", "0.3.0", None), ("hyperopt", "0.3.1rc1", None),
    ("hyperopt", "0.4.0", "hyperopt 0.4.0 is newer than the supported < 0.4; "
                          "SparkTrials left unpatched"),
    ("pyspark", "3.4.4", "pyspark 3.4.4 is older than the supported 3.5; "
                         "SparkTrials left unpatched"),
    ("pyspark", "3.5.0", None), ("pyspark", "4.3.0", None), ("pyspark", "5.0.0.dev0",
                                                             "pyspark 5.0.0.dev0 is newer"),
    ("mlflow", "2.8.1", "mlflow 2.8.1 is older than the supported 2.9; MLflow tracking is off"),
    ("mlflow", "2.9.2", None), ("mlflow", "3.17.2", None), ("mlflow", "4.0.0", "mlflow 4.0.0 is "),
    ("mlflow", None, None),  # not a distribution (a source checkout): given the benefit of doubt
])
def test_support_problems_are_one_line_naming_version_and_consequence(name, found, problem):
    said = versions.support_problem(name, found)
    if problem is None:
        assert said is None
    else:
        assert said.startswith(problem) and "\n" not in said


# ------------------------------------------------------------------ guards, per version


@pytest.mark.parametrize("spark_version, takes_profile", [
    ("3.0.3", False), ("3.1.1", True), ("3.5.0", True), ("4.3.0", True)])
def test_max_concurrent_tasks_path_by_spark_version(spark_version, takes_profile):
    assert versions.max_concurrent_tasks_takes_profile(spark_version) is takes_profile


@pytest.mark.parametrize("hyperopt_version, cancels", [("0.2.7", False), ("0.3.0", True)])
def test_early_stop_path_by_hyperopt_version(hyperopt_version, cancels):
    assert versions.early_stop_cancels_trials(hyperopt_version) is cancels


@pytest.mark.parametrize("spark_version, takes_session", [
    ("3.5.0", False), ("3.5.9", False), ("4.0.0", True), ("4.3.0", True)])
def test_inheritable_thread_target_path_by_spark_version(spark_version, takes_session):
    assert versions.thread_target_takes_session(spark_version) is takes_session


def test_the_installed_pyspark_takes_its_thread_target_path(spark):
    """Fails loudly if pyspark's inheritable_thread_target changes under the guard."""
    import pyspark

    from runtime_ml.driver.launcher import ClassicLauncher

    parameter = inspect.signature(pyspark.inheritable_thread_target).parameters["f"]
    annotation = str(parameter.annotation)
    assert ("SparkSession" in annotation) is versions.thread_target_takes_session(
        pyspark.__version__)

    seen = []
    sc = spark.sparkContext
    sc.setLocalProperty("spark.scheduler.pool", "compat-pool")
    try:
        target = ClassicLauncher(spark, job_cancelling=False).thread_target(lambda: seen.append(
            sc.getLocalProperty("spark.scheduler.pool")))
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    finally:
        sc.setLocalProperty("spark.scheduler.pool", None)
    assert seen == ["compat-pool"]


def test_the_requested_parallelism_is_known_on_both_hyperopt_versions(spark, active):
    import hyperopt

    trials = hyperopt.SparkTrials(parallelism=3, spark_session=spark)
    # 0.3.0 keeps the request itself; 0.2.7 only its decision, so the patch records it.
    newer = versions.version_tuple(INSTALLED["hyperopt"]) >= (0, 3, 0)
    assert hasattr(trials, "user_specified_parallelism") is newer
    assert getattr(trials, spark_trials.REQUESTED_PARALLELISM) == 3
    assert spark_trials.requested_parallelism(trials) == 3


def test_hyperopts_private_sparktrials_attributes_are_where_runtime_ml_reads_them(spark, active):
    import hyperopt

    trials = hyperopt.SparkTrials(parallelism=1, spark_session=spark)
    moved = [name for name in spark_trials.HYPEROPT_ATTRIBUTES if not hasattr(trials, name)]
    assert moved == [], (f"hyperopt {INSTALLED['hyperopt']} moved SparkTrials{moved}: update "
                         "runtime_ml/compat/spark_trials.py")
    assert spark_trials.session(trials) is spark and not spark_trials.cancelled(trials)
    assert spark_trials.mark_cancelled(trials, "why") and not spark_trials.mark_cancelled(trials, "x")
    assert (trials._fmin_cancelled, spark_trials.cancelled_reason(trials)) == (True, "why")
    for name in spark_trials.OVERRIDDEN:
        assert callable(getattr(type(trials), name)), name


def test_a_sparktrials_attribute_hyperopt_moved_is_one_warning_and_its_fallback_or_strict_raises(
        monkeypatch, runtime_log):
    class Moved:  # a SparkTrials of a hyperopt that keeps its state elsewhere
        pass

    monkeypatch.delenv("RUNTIME_ML_STRICT")
    assert spark_trials.cancelled(Moved()) is False and spark_trials.session(Moved()) is None
    said = [r.getMessage() for r in runtime_log.records if r.levelno == logging.WARNING]
    assert len(said) == 2 and "SparkTrials._fmin_cancelled" in said[0], said
    monkeypatch.setenv("RUNTIME_ML_STRICT", "1")
    with pytest.raises(AttributeError):
        spark_trials.cancelled(Moved())


def test_hyperopts_parallelism_rule_is_kept_when_its_private_helper_moves(monkeypatch):
    from hyperopt import SparkTrials

    monkeypatch.delenv("RUNTIME_ML_STRICT")
    cases = [(None, 4), (0, 4), (-2, 1), (3, 4), (500, 4)]
    stock = [spark_trials.decided_parallelism(SparkTrials, *case) for case in cases]

    class Moved(SparkTrials):
        _decide_parallelism = None

    assert [spark_trials.decided_parallelism(Moved, *case) for case in cases] == stock
    assert stock == [4, 4, 1, 3, SparkTrials.MAX_CONCURRENT_JOBS_ALLOWED]


def test_the_running_spark_context_is_found_where_pyspark_keeps_it(spark):
    from runtime_ml.compat import spark_private

    assert spark_private.running_spark_context() is spark.sparkContext, (
        "pyspark moved SparkContext._active_spark_context: update "
        "runtime_ml/compat/spark_private.py")


def test_mlflows_private_experiment_getter_is_there_and_agrees_with_the_fallback(monkeypatch):
    """compat.mlflow_private.active_experiment_id uses mlflow.tracking.fluent._get_experiment_id (private) and
    falls back to MLFLOW_EXPERIMENT_ID; this fails loudly if mlflow drops the private getter."""
    from mlflow.tracking import fluent

    from runtime_ml.compat.mlflow_private import active_experiment_id

    assert callable(getattr(fluent, "_get_experiment_id", None))
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")
    assert active_experiment_id() == "0"


def test_mlflows_database_store_module_is_where_the_background_import_loads_it():
    """tracking.preload imports compat.mlflow_private.DATABASE_STORE_MODULE (not a public name) for
    a database tracking URI; this fails loudly if MLflow moves it."""
    from runtime_ml.compat import mlflow_private

    assert mlflow_private.load_database_store(), (
        f"mlflow {INSTALLED['mlflow']} has no {mlflow_private.DATABASE_STORE_MODULE}: update "
        "runtime_ml/compat/mlflow_private.py")


# ------------------------------------------------------------------ unsupported: one line


def _fake_distribution(root, name, fake_version):
    info = root / f"{name}-{fake_version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {fake_version}\n")
    return root


ACTIVATE_AND_IMPORT = """
    import logging, sys
    sys.path.insert(0, {fake!r})
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout,
                        format="%(levelname)s %(name)s: %(message)s")
    import runtime_ml
    runtime_ml.activate()
    import hyperopt.spark
    from runtime_ml.driver.patch import is_patched
    print("patched" if is_patched() else "unpatched")
"""


@pytest.mark.parametrize("name, fake_version, line, patched", [
    ("hyperopt", "0.1.2", "WARNING runtime_ml: hyperopt 0.1.2 is older than the supported 0.2.7; "
                          "SparkTrials left unpatched.", False),
    ("pyspark", "3.3.2", "WARNING runtime_ml: pyspark 3.3.2 is older than the supported 3.5; "
                         "SparkTrials left unpatched.", False),
    ("mlflow", "2.3.0", "WARNING runtime_ml: mlflow 2.3.0 is older than the supported 2.9; "
                        "MLflow tracking is off.", True),
])
def test_an_unsupported_version_is_one_clear_line_at_activation(tmp_path, name, fake_version,
                                                                line, patched):
    fake = _fake_distribution(tmp_path, name, fake_version)
    done = run_python(ACTIVATE_AND_IMPORT.format(fake=str(fake)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [line, "patched" if patched else "unpatched"]


def test_with_an_unsupported_mlflow_fmin_runs_untracked_and_says_why(spark, active, runtime_log,
                                                                     monkeypatch):
    import hyperopt
    from hyperopt import hp, rand

    monkeypatch.setattr(versions, "installed_version",
                        lambda name: "2.3.0" if name == "mlflow" else INSTALLED[name])
    trials = hyperopt.SparkTrials(parallelism=2, spark_session=spark)
    hyperopt.fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2,
                  trials=trials, show_progressbar=False)
    assert len(trials.trials) == 2
    messages = [r.getMessage() for r in runtime_log.records if r.levelno >= logging.INFO]
    assert any("mlflow 2.3.0 is older than the supported 2.9; MLflow tracking is off" in m
               for m in messages)
    assert not any("tracking this fmin in MLflow run" in m for m in messages)


def test_the_readme_matrix_names_the_tested_pins():
    readme = (REPO / "README.md").read_text()
    for constraints in ("constraints.txt", "constraints-compat.txt"):
        pins = dict(re.findall(r"^(pyspark|hyperopt|mlflow)==([\d.]+)$",
                               (REPO / constraints).read_text(), flags=re.M))
        assert set(pins) == {"pyspark", "hyperopt", "mlflow"}, constraints
        for name, pinned in pins.items():
            assert f"{name} {pinned}" in readme, (constraints, name, pinned)
    assert Path(REPO / ".ci" / "run").read_text().count("make test") == 2


def test_mlflows_fluent_state_is_where_a_reused_worker_puts_it_back(tmp_path):
    import mlflow

    from runtime_ml.worker.isolation import TrialProcessState

    for module, name in (mlflow_private.MLFLOW_TRACKING_URI_GLOBAL, mlflow_private.MLFLOW_EXPERIMENT_GLOBAL):
        assert hasattr(sys.modules[module], name), (
            f"mlflow {mlflow.__version__} moved {module}.{name}: update runtime_ml/compat/mlflow_private.py")
    before, uri_before = mlflow_private.mlflow_fluent_state(), mlflow.get_tracking_uri()
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with TrialProcessState({}):  # what a trial does on a reused worker, here in the driver
        mlflow.set_tracking_uri(elsewhere)
        mlflow.set_experiment("a trial's own")
        assert mlflow_private.mlflow_fluent_state()[0] == elsewhere
    assert mlflow_private.mlflow_fluent_state() == before and mlflow.get_tracking_uri() == uri_before


def test_loaded_trials_keep_their_ids_and_new_ones_come_after_on_the_installed_hyperopt(
        monkeypatch):
    """hyperopt_private.keep_trial_ids reserves ids in hyperopt's private Trials._ids; when that moves,
    resumed trials are renumbered (the fallback below), and this test says so first."""
    from hyperopt import Trials

    trials = Trials()
    assert isinstance(trials.__dict__.get("_ids"), set), "hyperopt moved Trials._ids"
    assert hyperopt_private.keep_trial_ids(trials, [0, 1, 4, 5]) == [0, 1, 4, 5]
    assert trials.new_trial_ids(2) == [6, 7]

    class Moved:  # a Trials without the private set: the fallback numbers them 0..n-1
        pass

    with pytest.raises(AttributeError, match="Trials._ids"):  # strict mode: loudly
        hyperopt_private.keep_trial_ids(Moved(), [0, 1, 4, 5])
    monkeypatch.delenv("RUNTIME_ML_STRICT")
    assert hyperopt_private.keep_trial_ids(Moved(), [0, 1, 4, 5]) == [0, 1, 2, 3]


def test_the_dispatcher_sees_every_trial_hyperopt_waits_for_on_the_installed_hyperopt(
        monkeypatch):
    """hyperopt_private.unsynced_trial_docs reads hyperopt's private Trials._dynamic_trials, where fmin's
    loop counts unfinished trials (count_by_state_unsynced). When it moves, the refreshed
    trials.trials is the fallback, which misses a trial inserted and not yet refreshed (the hang
    of issue 22): this test says so first."""
    from hyperopt import Trials, base, hp, rand

    trials = Trials()
    assert isinstance(trials.__dict__.get("_dynamic_trials"), list), (
        "hyperopt moved Trials._dynamic_trials: update hyperopt_private.unsynced_trial_docs")
    domain = base.Domain(lambda x: x, hp.uniform("x", 0, 1))
    trials.insert_trial_docs(rand.suggest(trials.new_trial_ids(1), domain, trials, 0))
    assert trials.trials == []  # inserted, not refreshed
    assert trials.count_by_state_unsynced(base.JOB_STATE_NEW) == 1
    assert [doc["tid"] for doc in hyperopt_private.unsynced_trial_docs(trials)] == [0]

    class Moved:  # a Trials without the private list: the refreshed trials
        trials = [{"tid": 3}]

    with pytest.raises(AttributeError, match="Trials._dynamic_trials"):  # strict mode: loudly
        hyperopt_private.unsynced_trial_docs(Moved())
    monkeypatch.delenv("RUNTIME_ML_STRICT")
    assert hyperopt_private.unsynced_trial_docs(Moved()) == [{"tid": 3}]


def test_tpes_graph_builder_is_where_the_fast_tpe_reads_it_and_hyperopts_tpe_runs_without_it(
        monkeypatch):
    """hyperopt_private.tpe_graph calls hyperopt's tpe.build_posterior_wrapper (not documented
    API) once per fmin; when it moves, runtime-ml's TPE hands each call to hyperopt's
    tpe.suggest."""
    from hyperopt import Trials, base, hp, pyll, tpe

    from runtime_ml.driver import fast_tpe

    domain = base.Domain(lambda x: x, hp.quniform("x", 0, 10, 1))
    assert hasattr(tpe, "build_posterior_wrapper"), (
        "hyperopt moved tpe.build_posterior_wrapper: update hyperopt_private.tpe_graph")
    observed, observed_loss, posterior = hyperopt_private.tpe_graph(
        domain, 1.0, 0.25, {"GMM1_lpdf": "runtime_ml_GMM1_lpdf"})
    assert set(observed) == set(observed_loss) == {"idxs", "vals"}
    names = {node.name for node in pyll.dfs(posterior)}
    assert "runtime_ml_GMM1_lpdf" in names and "GMM1_lpdf" not in names

    monkeypatch.delattr(tpe, "build_posterior_wrapper")
    with pytest.raises(AttributeError, match="build_posterior_wrapper"):  # strict mode: loudly
        hyperopt_private.tpe_graph(domain, 1.0, 0.25, {})
    monkeypatch.delenv("RUNTIME_ML_STRICT")
    assert hyperopt_private.tpe_graph(domain, 1.0, 0.25, {}) is None
    called = []
    ours = fast_tpe.FastTpe(**fast_tpe.defaults())
    monkeypatch.setattr(tpe, "suggest", lambda *args, **kwargs: called.append(kwargs) or [])
    assert ours([0], domain, Trials(), 1) == [] and called[0]["n_startup_jobs"] == 20


def test_the_settled_trials_view_counts_and_refreshes_as_hyperopt_on_the_installed_hyperopt(
        monkeypatch):
    """hyperopt_private.SettledTrials answers refresh() and count_by_state_unsynced() walking only
    the trials after the oldest unsettled one, from hyperopt's private Trials state; after every
    step of a random history (trials inserted, launched, finished out of order, failed,
    cancelled and then finished) it gives hyperopt's own answers."""
    import numpy as np
    from hyperopt import Trials, base, hp, rand

    trials = Trials()
    view = hyperopt_private.SettledTrials.of(trials)
    assert view is not None, "hyperopt moved Trials' private state: update SettledTrials"
    domain = base.Domain(lambda x: x, hp.uniform("x", 0, 1))
    rng = np.random.default_rng(0)
    forward = {base.JOB_STATE_NEW: [base.JOB_STATE_RUNNING, base.JOB_STATE_CANCEL],
               base.JOB_STATE_RUNNING: [base.JOB_STATE_DONE, base.JOB_STATE_ERROR,
                                        base.JOB_STATE_CANCEL],
               base.JOB_STATE_CANCEL: [base.JOB_STATE_DONE]}
    asks = list(base.JOB_STATES) + [[base.JOB_STATE_NEW, base.JOB_STATE_RUNNING],
                                    (base.JOB_STATE_DONE,), []]
    for step in range(600):
        if rng.random() < 0.3:
            trials.insert_trial_docs(rand.suggest(trials.new_trial_ids(int(rng.integers(1, 4))),
                                                  domain, trials, step))
        docs = trials._dynamic_trials
        movable = [doc for doc in docs if doc["state"] in forward]
        if movable:
            doc = movable[int(rng.integers(0, min(len(movable), 6)))]  # mostly the older ones
            doc["state"] = forward[doc["state"]][int(rng.integers(len(forward[doc["state"]])))]
        assert [view.count_by_state_unsynced(a) for a in asks] == [
            Trials.count_by_state_unsynced(trials, a) for a in asks], step
        view.refresh()
        ours, our_ids = list(trials._trials), set(trials._ids)
        Trials.refresh(trials)
        assert ours == trials._trials and our_ids == trials._ids, step
    assert view._settled > len(trials._dynamic_trials) / 2  # it walked only the unsettled end
    with pytest.raises(TypeError):
        view.count_by_state_unsynced(None)

    class Moved(Trials):  # a Trials without the private state: hyperopt's methods stay
        def __init__(self):
            pass

    hooked = Trials()
    hooked.refresh = lambda: None  # a function of the caller's on the instance is left alone
    assert hyperopt_private.SettledTrials.of(hooked) is None
    with pytest.raises(AttributeError, match="Trials._dynamic_trials"):  # strict mode: loudly
        hyperopt_private.SettledTrials.of(Moved())
    monkeypatch.delenv("RUNTIME_ML_STRICT")
    assert hyperopt_private.SettledTrials.of(Moved()) is None
