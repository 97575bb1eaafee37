"""A trial's MLflow child run, as the objective meets it on the executor.

The driver launches a trial without waiting for its child run: it asks for the run in the
background and ships the run's key (fmin_uuid and trial id, both tags of the run) with the
tracking URI and credentials in the trial's environment. When the objective first uses MLflow's
fluent API (`mlflow.log_*`, `with mlflow.start_run():`, an autolog), the start_run below finds the
run by that key (waiting for the driver's request when it is still on its way, at most
RESOLVE_DEADLINE) and sets MLFLOW_RUN_ID, so what the objective logs lands in that run. An
objective that never uses MLflow costs no request at all. When the server does not answer from
this executor, the trial's calls go to the executor's default store as in stock (and the worker
stops asking for UNREACHABLE_SECONDS); when Spark runs the trial's task a second time (its
executor was lost), that attempt logs into a run nested in the trial's run.

An objective that chooses its own MLflow target (`mlflow.set_tracking_uri`,
`mlflow.set_experiment`, `start_run(experiment_id=...)`) must not be handed that run: MLflow would
fail every trial ("active experiment ID does not match environment run ID", "Run ... not found")
where stock hyperopt runs it. So while a trial runs, MLflow's
`start_run` hides MLFLOW_RUN_ID from a call whose target is not the trial run's.

The wrapper goes on `mlflow.tracking.fluent` when the objective first imports MLflow (nothing is
imported for it), and outside a trial it passes every call through unchanged.
"""

import functools
import os
import sys
import time
from typing import Any, Dict

from runtime_ml import log, server_health
from runtime_ml.compat import mlflow_private
from runtime_ml.patching import mark, original_of
from runtime_ml.redaction import redacted_uri
from runtime_ml.startup.import_hooks import PostImportHook

logger = log.logger()

FLUENT = "mlflow.tracking.fluent"
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's tag that nests a trial's run under the fmin's
RUN_ID = "MLFLOW_RUN_ID"
TRIAL_RUN_ID = "RUNTIME_ML_TRIAL_RUN_ID"
TRIAL_TRACKING_URI = "RUNTIME_ML_TRIAL_TRACKING_URI"
TRIAL_EXPERIMENT_ID = "RUNTIME_ML_TRIAL_EXPERIMENT_ID"
TRIAL_RUN_KEY = "RUNTIME_ML_TRIAL_RUN_KEY"  # "<fmin_uuid>:<trial id>": the run not found yet
TRIAL_ATTEMPT = "RUNTIME_ML_TRIAL_ATTEMPT"  # "2" and on: Spark runs the trial's task again
ATTEMPT_OF_TAG = "runtime_ml.attempt_of"  # on an attempt's run: the TRIAL_RUN_KEY it re-runs
ATTEMPTS_TAG = "runtime_ml.attempts"  # on a trial's run: how many attempts logged into it
RESOLVE_DEADLINE = 10.0  # seconds the objective's first MLflow call waits for its trial's run
UNREACHABLE_SECONDS = 60.0  # how long a worker that found the server unreachable stops asking it
_unreachable_until: dict = {}  # tracking URI -> time.monotonic() until which it is not asked here


def pending_trial_environment(fmin_uuid: str, tid: int, tracking_uri: str,
                              experiment_id: str) -> Dict[str, str]:
    """The environment variables that let the objective find its trial's run, still being made."""
    return {TRIAL_RUN_KEY: f"{fmin_uuid}:{tid}", TRIAL_TRACKING_URI: tracking_uri,
            TRIAL_EXPERIMENT_ID: str(experiment_id)}


def run_key_filter(key):
    """The search_runs filter for the run a TRIAL_RUN_KEY names."""
    fmin_uuid, tid = key.split(":")
    return f"tags.fmin_uuid = '{fmin_uuid}' and tags.trial_id = '{tid}'"


def find_trial_run(key, environ, deadline=RESOLVE_DEADLINE, pause=time.sleep):
    """The id of the run `key` (a TRIAL_RUN_KEY) names, once the driver has made it; None when it
    is not there within `deadline` seconds."""
    from mlflow import MlflowClient

    client = MlflowClient(environ[TRIAL_TRACKING_URI])
    where = run_key_filter(key)
    waited, wait = 0.0, 0.01
    while True:
        found = client.search_runs([environ[TRIAL_EXPERIMENT_ID]], where, max_results=1)
        if found:
            return found[0].info.run_id
        if waited >= deadline:
            return None
        pause(wait)
        waited, wait = waited + wait, min(0.2, wait * 2)


def _offer_trial_run(experiment_id):
    """Before the objective's first start_run aimed at the trial's run: set MLFLOW_RUN_ID to it."""
    if RUN_ID in os.environ or not targets_trial_run(
            os.environ, sys.modules["mlflow"].get_tracking_uri(), mlflow_private.mlflow_fluent_state()[1],
            experiment_id):
        return
    key = os.environ.pop(TRIAL_RUN_KEY)
    uri = os.environ[TRIAL_TRACKING_URI]
    if _unreachable_until.get(uri, 0.0) > time.monotonic():
        _use_local_store()
        return
    try:
        run_id = find_trial_run(key, os.environ)
    except Exception as error:
        if server_answers(uri):  # it answered and refused: the objective sees MLflow's error
            raise
        _unreachable_until[uri] = time.monotonic() + UNREACHABLE_SECONDS
        logger.warning("the MLflow server %s does not answer from this executor (%s: "
                       "%s); what the objective logs goes to this executor's local store, as "
                       "without runtime-ml, for this trial and the next %.0f s of trials here.",
                       redacted_uri(uri), type(error).__name__, str(error).splitlines()[0][:200],
                       UNREACHABLE_SECONDS)
        _use_local_store()
        return
    if run_id is None:
        logger.warning("the trial's MLflow run (%s) was not there within %s s; what "
                       "the objective logs goes to a run of its own.", key, RESOLVE_DEADLINE)
        return
    attempt = os.environ.get(TRIAL_ATTEMPT)
    if attempt:
        run_id = attempt_run(run_id, key, attempt, os.environ)
    os.environ[RUN_ID] = os.environ[TRIAL_RUN_ID] = run_id


def server_answers(uri: str) -> bool:
    """Whether the tracking server's /health answers (server_health; 3 s at most)."""
    return server_health.unreachable(uri) is None


def _use_local_store():
    """The trial's MLflow calls go where stock hyperopt's would: the executor's default store."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop(TRIAL_TRACKING_URI, None)


def attempt_run(trial_run_id, key, attempt, environ):
    """A run for attempt `attempt` of the trial, nested in its run: Spark re-ran the trial's task
    because its executor was lost, and the objective logging its params again into the trial's
    run would fail ("Changing param values is not allowed") where stock hyperopt succeeds. The
    trial's run keeps what the lost attempt logged and is tagged with the count of attempts."""
    from mlflow import MlflowClient

    client = MlflowClient(environ[TRIAL_TRACKING_URI])
    tid = key.split(":")[1]
    run = client.create_run(environ[TRIAL_EXPERIMENT_ID], run_name=f"trial-{tid}-attempt-{attempt}",
                            tags={PARENT_RUN_TAG: trial_run_id, ATTEMPT_OF_TAG: key})
    client.set_tag(trial_run_id, ATTEMPTS_TAG, attempt)
    return run.info.run_id


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
        if run_id is None and TRIAL_RUN_KEY in os.environ:
            _offer_trial_run(args[1] if len(args) > 1 else kwargs.get("experiment_id"))
        offered = os.environ.get(RUN_ID)
        if run_id is not None or offered is None or offered != os.environ.get(TRIAL_RUN_ID):
            return start_run(*args, **kwargs)
        experiment_id = args[1] if len(args) > 1 else kwargs.get("experiment_id")
        if targets_trial_run(os.environ, sys.modules["mlflow"].get_tracking_uri(),
                             mlflow_private.mlflow_fluent_state()[1], experiment_id):
            return start_run(*args, **kwargs)
        del os.environ[RUN_ID]  # the objective's own target: a run of its own, as in stock
        try:
            return start_run(*args, **kwargs)
        finally:
            os.environ[RUN_ID] = offered

    return mark(start_run_in_a_trial, start_run)


def _wrap_module(fluent: Any) -> None:
    """Idempotent; `mlflow.start_run` follows when mlflow has bound it already."""
    current = fluent.start_run
    if original_of(current) is not None:
        return
    fluent.start_run = _wrap(current)
    package: Any = sys.modules.get("mlflow")
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
    fluent: Any = sys.modules.get(FLUENT)
    original = original_of(getattr(fluent, "start_run", None))
    if original is None:
        return
    package: Any = sys.modules.get("mlflow")
    if package is not None and package.start_run is fluent.start_run:
        package.start_run = original
    fluent.start_run = original
