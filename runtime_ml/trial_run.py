"""A trial's MLflow child run, as the objective meets it on the executor.

The driver creates the trial's child run and ships its id as MLFLOW_RUN_ID (with the tracking URI
and credentials) in the trial's environment, so `mlflow.log_*` or `with mlflow.start_run():` in the
objective lands in that run. An objective that chooses its own MLflow target
(`mlflow.set_tracking_uri`, `mlflow.set_experiment`, `start_run(experiment_id=...)`) must not be
handed that run: MLflow would fail every trial ("active experiment ID does not match environment
run ID", "Run ... not found") where stock hyperopt runs it. So while a trial runs, MLflow's
`start_run` hides MLFLOW_RUN_ID from a call whose target is not the trial run's.

The wrapper goes on `mlflow.tracking.fluent` when the objective first imports MLflow (nothing is
imported for it), and outside a trial it passes every call through unchanged.
"""

import functools
import os
import sys

from runtime_ml import versions
from runtime_ml.import_hooks import PostImportHook

FLUENT = "mlflow.tracking.fluent"
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's tag that nests a trial's run under the fmin's
RUN_ID = "MLFLOW_RUN_ID"
TRIAL_RUN_ID = "RUNTIME_ML_TRIAL_RUN_ID"
TRIAL_TRACKING_URI = "RUNTIME_ML_TRIAL_TRACKING_URI"
TRIAL_EXPERIMENT_ID = "RUNTIME_ML_TRIAL_EXPERIMENT_ID"
ORIGINAL_ATTR = "__runtime_ml_original__"


def trial_environment(run_id, tracking_uri, experiment_id):
    """The environment variables that hand a trial's run to its objective."""
    return {RUN_ID: run_id, TRIAL_RUN_ID: run_id, TRIAL_TRACKING_URI: tracking_uri,
            TRIAL_EXPERIMENT_ID: str(experiment_id)}


def targets_trial_run(environ, tracking_uri, active_experiment, experiment_id=None):
    """Whether a start_run() call made now means the trial's run: the same tracking URI, and no
    other experiment chosen by argument or by mlflow.set_experiment."""
    trial_experiment = environ.get(TRIAL_EXPERIMENT_ID)
    for chosen in (experiment_id, active_experiment):
        if chosen is not None and str(chosen) != trial_experiment:
            return False
    return (tracking_uri or "").rstrip("/") == (environ.get(TRIAL_TRACKING_URI) or "").rstrip("/")


def _wrap(start_run):
    @functools.wraps(start_run)
    def start_run_in_a_trial(*args, **kwargs):
        run_id = args[0] if args else kwargs.get("run_id")
        offered = os.environ.get(RUN_ID)
        if run_id is not None or offered is None or offered != os.environ.get(TRIAL_RUN_ID):
            return start_run(*args, **kwargs)
        experiment_id = args[1] if len(args) > 1 else kwargs.get("experiment_id")
        if targets_trial_run(os.environ, sys.modules["mlflow"].get_tracking_uri(),
                             versions.mlflow_fluent_state()[1], experiment_id):
            return start_run(*args, **kwargs)
        del os.environ[RUN_ID]  # the objective's own target: a run of its own, as in stock
        try:
            return start_run(*args, **kwargs)
        finally:
            os.environ[RUN_ID] = offered

    setattr(start_run_in_a_trial, ORIGINAL_ATTR, start_run)
    return start_run_in_a_trial


def _wrap_module(fluent):
    """Idempotent; `mlflow.start_run` follows when mlflow has bound it already."""
    current = fluent.start_run
    if hasattr(current, ORIGINAL_ATTR):
        return
    fluent.start_run = _wrap(current)
    package = sys.modules.get("mlflow")
    if package is not None and getattr(package, "start_run", None) is current:
        package.start_run = fluent.start_run


class _FluentHook(PostImportHook):
    target = FLUENT

    def after_exec(self, module):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        _wrap_module(module)


def guard_when_loaded():
    """Wrap MLflow's start_run now if MLflow is loaded, else as soon as it is. Idempotent."""
    fluent = sys.modules.get(FLUENT)
    if fluent is not None:
        _wrap_module(fluent)
    elif not any(isinstance(finder, _FluentHook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _FluentHook())


def unguard():
    """Put MLflow's own start_run back and drop a pending hook. Idempotent."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _FluentHook)]
    fluent = sys.modules.get(FLUENT)
    original = getattr(getattr(fluent, "start_run", None), ORIGINAL_ATTR, None)
    if original is None:
        return
    package = sys.modules.get("mlflow")
    if package is not None and package.start_run is fluent.start_run:
        package.start_run = original
    fluent.start_run = original
