"""Where an fmin's runs go: a fresh search under its own parent run, the active run, a search
resumed from the store, or the one `trials_from_run` continues.

`decide` is the one decision, a pure function of plain facts (SearchFacts), tested as a table. It
also says what the first trials may launch before: the store's answer, or even MLflow's import.
`open_search` carries the decision out with the store (finding, reopening and loading a search to
resume or continue) once the tracker has the client.
"""

from typing import Any, Mapping, NamedTuple, Optional, Tuple

from runtime_ml import conf, log
from runtime_ml.compat import mlflow_private, spark_trials
from runtime_ml.policy import report_internal_error
from runtime_ml.tracking import preload, resume
from runtime_ml.tracking.records import fmin_uuid

logger = log.logger()

FRESH = "fresh"  # this fmin's own parent run
ACTIVE = "active"  # the active run is the parent
RESUME = "resume"  # an unfinished search of the experiment with the same keys, if one is found
CONTINUE = "continue"  # the search trials_from_run loaded

RESUME_HELD_TRIALS = (f"{conf.RESUME.name} is on, but this SparkTrials already holds {{}} trials; "
                      "continuing with those, as hyperopt does.")


class SearchFacts(NamedTuple):
    """What the decision is made from, read before MLflow is touched (when `mlflow_importing`,
    the application has not used MLflow: no active run, no chosen experiment)."""

    continues_a_search: bool  # the SparkTrials came from trials_from_run
    resume_on: bool  # spark.runtimeml.hyperopt.resume
    held_trials: int  # trials the SparkTrials holds before this fmin
    mlflow_importing: bool  # MLflow is still being imported in the background
    active_run: bool  # an MLflow run is active in this process
    chosen_experiment: bool  # the application chose the experiment (mlflow.set_experiment)
    environ: Mapping[str, str]  # MLflow's environment variables (MLFLOW_TRACKING_URI, ...)
    uri_file_exists: bool  # the sqlite file MLFLOW_TRACKING_URI names exists


class SearchPlan(NamedTuple):
    where: str  # CONTINUE, RESUME, ACTIVE or FRESH
    fallback: str  # where the runs go when RESUME finds no search: ACTIVE or FRESH
    store_first: bool  # the store answers before the first trials launch
    # (tracking URI, experiment id) from the environment when the first trials launch while
    # MLflow is still being imported, else None
    while_importing: Optional[Tuple[str, str]]
    note: Optional[str]  # a line for the log: why resume is not used


def decide(facts: SearchFacts) -> SearchPlan:
    """Where the runs go, and what the first trials wait for.

    - trials_from_run's search is continued; else, with resume on and a SparkTrials that holds no
      trials, a matching unfinished search is looked for; else the active run, else a fresh one.
    - A fresh search launches its first trials while the store is asked whether it answers, when
      its experiment is known without the store: one the application chose, or the default
      (MLflow looks MLFLOW_EXPERIMENT_NAME up in the store and checks MLFLOW_EXPERIMENT_ID there).
      Everything else reads the store before the first proposal: a search to resume or continue
      (its trials are loaded first), the active run (its params are read).
    - While MLflow is being imported, a fresh search launches even before the import ends when
      the environment names the store: a server or database URI and MLFLOW_EXPERIMENT_ID or the
      default experiment "0"; not with MLFLOW_EXPERIMENT_NAME or MLFLOW_RUN_ID, nor for a sqlite
      file that does not exist yet (the driver makes its tables before any trial, or the first
      trials' objectives would make them at once, in each other's way).
    """
    fallback = ACTIVE if facts.active_run else FRESH
    note = None
    if facts.continues_a_search:
        where = CONTINUE
    elif facts.resume_on and facts.held_trials:
        where, note = fallback, RESUME_HELD_TRIALS.format(facts.held_trials)
    elif facts.resume_on:
        where = RESUME
    else:
        where = fallback
    environ = facts.environ
    experiment_in_environ = bool({"MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"} & set(environ))
    store_first = where != FRESH or (experiment_in_environ and not facts.chosen_experiment)
    while_importing = None
    if where == FRESH and facts.mlflow_importing:
        uri = environ.get("MLFLOW_TRACKING_URI", "")
        scheme = preload.uri_scheme(uri)
        named = scheme in ("http", "https") + preload.DATABASE_SCHEMES and not (
            scheme == "sqlite" and not (uri.startswith("sqlite:///") and facts.uri_file_exists))
        if named and not {"MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"} & set(environ):
            while_importing = (uri, environ.get("MLFLOW_EXPERIMENT_ID") or "0")
            store_first = False
    return SearchPlan(where, fallback, store_first, while_importing, note)


def sqlite_file(uri: str) -> Optional[str]:
    """The file of a `sqlite:///path` URI (None for any other URI)."""
    return uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None


class Search(NamedTuple):
    """Where this fmin's trial runs go: the parent (None: this fmin's own, still to be made), the
    suffix of the parent's keys, and the search it continues, if any."""
    experiment_id: str
    parent_id: Optional[str]
    own_parent: bool
    suffix: str
    fmin_uuid: str
    resumption: Optional[Any]


def open_search(client: Any, plan: SearchPlan, active: Any, trials: Any, keys: Any,
                end_run: Any) -> Search:
    """The decision carried out with the store: the search trials_from_run continues, or the one
    found to resume (reopened, its trials loaded into `trials`), else the active run or a new
    parent (`plan.fallback`)."""
    experiment_id = active.info.experiment_id if active else mlflow_private.active_experiment_id()
    resumption = None
    if plan.where == CONTINUE:
        resumption = spark_trials.resumption(trials)
        differing = keys.differences(resumption.keys_tags, resumption.suffix)
        if differing:
            logger.warning("continuing the search of MLflow run %s as asked, but "
                           "this fmin's %s differs from that search's.", resumption.parent_id,
                           " and ".join(differing))
    elif plan.where == RESUME:
        try:
            resumption = find_resumption(client, experiment_id, active, keys)
        except Exception:  # the search starts fresh, still tracked
            report_internal_error("looking for an unfinished search to resume")
    if resumption is not None:
        if active is not None and active.info.run_id != resumption.parent_id:
            logger.warning("these trials continue MLflow run %s, not the active "
                           "run %s; the trial runs go under %s.", resumption.parent_id,
                           active.info.run_id, resumption.parent_id)
        resume.reopen(client, resumption, end_run)
        resume.load_into(trials, resumption)
        return Search(resumption.experiment_id, resumption.parent_id, resumption.own_parent,
                      resumption.suffix, resumption.fmin_uuid, resumption)
    uuid_ = fmin_uuid()
    if active is not None:
        taken = set(client.get_run(active.info.run_id).data.params)
        return Search(experiment_id, active.info.run_id, False,
                      f"_{uuid_}" if "max_evals" in taken else "", uuid_, None)
    return Search(experiment_id, None, True, "", uuid_, None)


def find_resumption(client: Any, experiment_id: str, active: Any, keys: Any) -> Any:
    """The search to continue (spark.runtimeml.hyperopt.resume on), with one line saying
    whether it continues one, and why not when it starts fresh."""
    if active is not None:
        resumption, why = resume.find_in_active_run(client, active, keys)
    else:
        resumption, why = resume.find_search(client, experiment_id, keys)
    if resumption is None:
        logger.info("resume is on; starting a fresh search: %s.", why)
        return None
    cut_off = sum(status == "KILLED" for _, status in resumption.stale_runs)
    killed = f"; {cut_off} trial runs left RUNNING are ended as KILLED" if cut_off else ""
    logger.info("resume is on; continuing the unfinished search in MLflow run %s "
                "(same space, algorithm and objective): %s loaded%s.", resumption.parent_id,
                resume.summary(resumption.records), killed)
    return resumption
