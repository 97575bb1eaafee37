"""Resuming a SparkTrials search from its MLflow runs, after its driver died or was interrupted.

A search is known by three keys, recorded as tags on its parent run when it starts:
- the space: a digest of hyperopt's printed form of the space (labels, distributions, bounds and
  options);
- the algorithm: its module (`hyperopt.tpe`, ...) and the keywords of a functools.partial;
- the objective: its module, qualified name and compiled code (bytecode, constants and names), not
  the data it closes over.
Every finished trial's child run holds the trial's document (its exact `vals`, state, loss and
status) as a JSON tag, so the trials come back as hyperopt wrote them.

Two ways in:
- `spark.runtimeml.hyperopt.resume` on: an fmin with a fresh SparkTrials and no active MLflow run
  continues the newest parent run in the experiment that runtime-ml created for the same keys and
  that did not finish (RUNNING with its driver gone, KILLED or FAILED). Inside an active run, only
  a search of that run is continued (the run is used and left open, as for any active run).
- `trials_from_run(run_id)`: a SparkTrials holding that parent run's finished trials; fmin with it
  continues that run whatever the conf says.
Continuing ends the earlier trial runs that were left RUNNING as KILLED; their trials are proposed
again, so only trials that finished count toward max_evals.
"""

import hashlib
import json
import os
import socket
import types
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Set

from runtime_ml import log
from runtime_ml.compat import hyperopt_private, spark_trials
from runtime_ml.trial.results import plain
from runtime_ml.worker.trial_run import PARENT_RUN_TAG

logger = log.logger()

SEARCH_TAG = "runtime_ml.search"  # the combined key; the parts below say what differs
KEY_TAGS = (("space", "runtime_ml.search.space"), ("algorithm", "runtime_ml.search.algo"),
            ("objective", "runtime_ml.search.objective"))
PARENT_KIND_TAG = "runtime_ml.parent"  # "own": runtime-ml created the run; "active": the user's
DRIVER_TAG = "runtime_ml.driver"  # host:pid of the driver that runs the search
RESUMED_TAG = "runtime_ml.resumed"  # how many times the search was continued
TRIAL_TAG = "runtime_ml.trial"  # a finished trial's document, on its child run
FMIN_UUID_TAG = "fmin_uuid"
MAX_EVALS_PARAM = "max_evals"
TAG_LIMIT = 5000  # MLflow 2.x accepts tag values up to 5000 characters (8000 from 2.16 on)
RESULT_KEYS = ("status", "loss", "true_loss", "loss_variance", "true_loss_variance")
PAGE = 1000  # runs per search_runs page
CANDIDATES = 20  # parent runs looked at, newest first


# ------------------------------------------------------------------ pure helpers


def _code_digest(code, digest):
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, digest)
        elif isinstance(const, frozenset):  # its order follows string hashing, per process
            digest.update(repr(sorted(map(repr, const))).encode())
        else:
            digest.update(repr(const).encode())


def objective_key(fn):
    """The objective's module, qualified name and compiled code, as a digest."""
    digest = hashlib.sha256()
    while True:
        if hasattr(fn, "func") and hasattr(fn, "keywords"):  # functools.partial
            digest.update(repr(sorted(fn.keywords or {})).encode())
            fn = fn.func
        elif isinstance(fn, types.MethodType):
            fn = fn.__func__
        else:
            break
    target = fn if isinstance(fn, types.FunctionType) else type(fn).__call__
    digest.update(f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
                  .encode())
    code = getattr(target, "__code__", None)
    if code is not None:
        _code_digest(code, digest)
    return digest.hexdigest()[:16]


def space_key(space):
    from hyperopt import pyll

    return hashlib.sha256(str(pyll.as_apply(space)).encode()).hexdigest()[:16]


def algorithm_key(algo, name):
    keywords = getattr(algo, "keywords", None) or {}
    text = name + repr(sorted((k, repr(v)) for k, v in keywords.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SearchKeys:
    """What makes two fmin calls the same search."""

    __slots__ = ("space", "algorithm", "objective", "search")

    def __init__(self, space: str, algorithm: str, objective: str):
        self.space, self.algorithm, self.objective = space, algorithm, objective
        self.search = hashlib.sha256(f"{space}/{algorithm}/{objective}".encode()).hexdigest()[:16]

    @classmethod
    def of(cls, fn: Any, space: Any, algo: Any, algo_name: str) -> "SearchKeys":
        return cls(space_key(space), algorithm_key(algo, algo_name), objective_key(fn))

    def tags(self, suffix: str = "") -> Dict[str, str]:
        tags = {SEARCH_TAG + suffix: self.search}
        tags.update({tag + suffix: getattr(self, part) for part, tag in KEY_TAGS})
        return tags

    def differences(self, tags: Dict[str, str], suffix: str = "") -> List[str]:
        """The parts ('space', 'algorithm', 'objective') in which a run's tags differ."""
        return [part for part, tag in KEY_TAGS if tags.get(tag + suffix) != getattr(self, part)]


def space_labels(space):
    from hyperopt import pyll

    return {node.arg["label"].obj for node in pyll.toposort(pyll.as_apply(space))
            if node.name == "hyperopt_param"}


def trial_record(trial):
    """A finished trial (state DONE or ERROR) as a JSON-able document, or None for any other."""
    from hyperopt import base

    state = trial["state"]
    if state not in (base.JOB_STATE_DONE, base.JOB_STATE_ERROR):
        return None
    result = trial.get("result") or {}
    record = {
        "tid": int(trial["tid"]),
        "state": int(state),
        "vals": {str(label): [plain(v) for v in values]
                 for label, values in trial["misc"]["vals"].items()},
        "result": {key: value for key, value in ((k, plain(result[k])) for k in RESULT_KEYS
                                                 if k in result)
                   if isinstance(value, (str, int, float))},
    }
    error = trial["misc"].get("error")
    if error:
        lines = [line for line in str(error[1]).strip().splitlines() if line.strip()]
        record["error"] = [str(error[0]), lines[-1][:500] if lines else ""]
    return record


def record_tags(record, mask=str, limit=TAG_LIMIT):
    """The document as tags: TRIAL_TAG, then TRIAL_TAG.1, .2, ... when longer than one tag; `mask`
    takes the secrets out of its text before it is cut (a secret split between two tags would not
    be found in either)."""
    text = mask(json.dumps(record, separators=(",", ":")))
    chunks = [text[i:i + limit] for i in range(0, len(text), limit)]
    return {TRIAL_TAG if i == 0 else f"{TRIAL_TAG}.{i}": chunk for i, chunk in enumerate(chunks)}


def record_from_tags(tags):
    """The document written by record_tags, or None when the run has none (or a broken one)."""
    if TRIAL_TAG not in tags:
        return None
    parts, index = [tags[TRIAL_TAG]], 1
    while f"{TRIAL_TAG}.{index}" in tags:
        parts.append(tags[f"{TRIAL_TAG}.{index}"])
        index += 1
    try:
        record = json.loads("".join(parts))
    except ValueError:
        return None
    return record if isinstance(record, dict) and {"tid", "state", "vals"} <= set(record) else None


def driver_tag():
    return f"{socket.gethostname()}:{os.getpid()}"


def driver_still_running(tag, host, pid_alive):
    """True when the driver recorded in `tag` runs on this host and its process is alive. A driver
    on another host cannot be checked from here and counts as gone."""
    recorded_host, _, pid = (tag or "").rpartition(":")
    return recorded_host == host and pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))


def pick_search(candidates, keys, host, pid_alive):
    """The newest unfinished search runtime-ml started with these keys, or (None, why not).

    `candidates`: parent runs, newest first, as dicts with run_id, status and tags.
    """
    differing = None
    for run in candidates:
        tags = run["tags"]
        if tags.get(PARENT_KIND_TAG) != "own" or run["status"] == "FINISHED":
            continue
        if tags.get(SEARCH_TAG) != keys.search:
            if differing is None:
                differing = (run["run_id"], keys.differences(tags) or ["keys"])
            continue
        if run["status"] == "RUNNING" and driver_still_running(tags.get(DRIVER_TAG), host,
                                                                pid_alive):
            return None, (f"run {run['run_id']} is the same search, and its driver "
                          f"({tags[DRIVER_TAG]}) is still running")
        return run, None
    if differing is not None:
        return None, (f"no unfinished search in this experiment has this space, algorithm and "
                      f"objective (the newest unfinished one, run {differing[0]}, has a different "
                      f"{' and '.join(differing[1])})")
    return None, "no unfinished search in this experiment"


def searches_in(tags):
    """The searches recorded on a parent run: [(suffix, fmin uuid)], in the order they started."""
    found = []
    for key, value in tags.items():
        if key == FMIN_UUID_TAG or (key.startswith(FMIN_UUID_TAG + "_")
                                    and key[len(FMIN_UUID_TAG):] == f"_{value}"):
            found.append((key[len(FMIN_UUID_TAG):], value))
    return sorted(found, key=lambda item: item[0] != "")


def summary(records: List[dict]) -> str:
    from hyperopt import base

    ok = sum(1 for r in records if (r.get("result") or {}).get("status") == base.STATUS_OK
             and r["state"] == base.JOB_STATE_DONE)
    return f"{len(records)} finished trials ({ok} ok, {len(records) - ok} failed)"


# ------------------------------------------------------------------ what one continuation holds


class Resumption:
    """An earlier search to continue: its parent run and the trials its child runs hold."""

    def __init__(self, parent_id, experiment_id, suffix, fmin_uuid, records, stale_runs,
                 own_parent, keys_tags):
        self.parent_id = parent_id
        self.experiment_id = experiment_id
        self.suffix = suffix
        self.fmin_uuid = fmin_uuid
        self.records = records  # the finished trials' documents
        self.stale_runs = stale_runs  # [(run id, status)]: child runs the earlier driver left open
        self.own_parent = own_parent  # False: the user's run, which stays open
        self.keys_tags = keys_tags  # the parent's tags, to compare keys with the new fmin's
        self.loaded = False  # the records are in the SparkTrials

    def labels(self) -> Set[str]:
        return set().union(*(r["vals"] for r in self.records)) if self.records else set()


def load_into(trials, resumption):
    """Put the earlier trials into `trials` as done trials, with their own ids where hyperopt
    lets runtime-ml keep them (see hyperopt_private.keep_trial_ids). Nothing is inserted on failure.

    A trial whose objective raised comes back as a done trial with status 'fail' and its error in
    misc['error']: hyperopt leaves errored trials out of len(trials), so only that way does it
    count toward max_evals, as it did in the fmin that evaluated it (the algorithms and the best
    trial ignore it either way)."""
    from hyperopt import base


    if resumption.loaded or not resumption.records:
        resumption.loaded = True
        return
    records = sorted(resumption.records, key=lambda r: r["tid"])
    tids = hyperopt_private.keep_trial_ids(trials, [r["tid"] for r in records])
    docs = []
    for tid, record in zip(tids, records, strict=True):
        vals = {label: list(values) for label, values in record["vals"].items()}
        misc = {"tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"), "workdir": None,
                "idxs": {label: [tid] if values else [] for label, values in vals.items()},
                "vals": vals}
        if record["state"] == base.JOB_STATE_DONE:
            result = dict(record.get("result") or {"status": base.STATUS_FAIL})
        else:  # it raised: a done trial with status 'fail', so that it counts toward max_evals
            result = {"status": base.STATUS_FAIL}
        [doc] = trials.new_trial_docs([tid], [None], [result], [misc])
        doc["state"] = base.JOB_STATE_DONE
        if record.get("error"):
            doc["misc"]["error"] = tuple(record["error"])
        doc["book_time"] = doc["refresh_time"] = record.get("ended")
        docs.append(doc)
    trials.insert_trial_docs(docs)
    trials.refresh()
    resumption.loaded = True


def check_space(resumption: "Resumption", space: Any) -> None:
    """trials_from_run's trials must be trials of this fmin's space: the same labels."""
    from runtime_ml.errors import UserInputError

    loaded, wanted = resumption.labels(), space_labels(space)
    if resumption.records and loaded != wanted:
        raise UserInputError(
            f"the trials loaded from MLflow run {resumption.parent_id} have the parameters "
            f"{sorted(loaded)}, but this fmin's space has {sorted(wanted)}. Pass the space that "
            "search used, or a fresh SparkTrials() to start a new search.")


# ------------------------------------------------------------------ MLflow reads and writes


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _all_runs(client, experiment_id, filter_string):
    token, runs = None, []
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=PAGE,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _time(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).replace(tzinfo=None) if ms else None


def load_search(client, experiment_id, parent_id, fmin_uuid):
    """The finished trials' documents of one search, and its child runs the earlier driver left
    RUNNING with the status to end them with: a trial whose document was written finished (its
    run ends FINISHED or FAILED, and it is loaded), any other was cut off (KILLED)."""
    children = _all_runs(client, experiment_id,
                         f"tags.`{PARENT_RUN_TAG}` = '{parent_id}' and "
                         f"tags.`{FMIN_UUID_TAG}` = '{fmin_uuid}'")
    records, stale, seen = [], [], set()
    for child in children:
        record = record_from_tags(child.data.tags)
        running = child.info.status == "RUNNING"
        if record is not None and record["tid"] not in seen and (
                running or child.info.status in ("FINISHED", "FAILED")):
            seen.add(record["tid"])
            record["ended"] = _time(child.info.end_time)
            records.append(record)
            if running:
                stale.append((child.info.run_id, "FINISHED" if child.data.tags.get(
                    "trial_status") == "success" else "FAILED"))
        elif running:
            stale.append((child.info.run_id, "KILLED"))
    return records, stale


def _as_candidate(run):
    return {"run_id": run.info.run_id, "status": run.info.status, "tags": run.data.tags,
            "run": run}


def find_search(client, experiment_id, keys):
    """The unfinished search of this experiment to continue, or (None, why not)."""
    matching = client.search_runs([experiment_id], f"tags.`{SEARCH_TAG}` = '{keys.search}'",
                                  max_results=CANDIDATES, order_by=["attributes.start_time DESC"])
    candidates = [_as_candidate(run) for run in matching]
    if not any(c["status"] != "FINISHED" and c["tags"].get(PARENT_KIND_TAG) == "own"
               for c in candidates):
        others = client.search_runs([experiment_id], f"tags.`{PARENT_KIND_TAG}` = 'own'",
                                    max_results=CANDIDATES,
                                    order_by=["attributes.start_time DESC"])
        candidates = [_as_candidate(run) for run in others]
    chosen, why = pick_search(candidates, keys, socket.gethostname(), _pid_alive)
    if chosen is None:
        return None, why
    return _resumption(client, chosen["run"], "", own_parent=True)


def find_in_active_run(client, active_run, keys):
    """The unfinished search of the user's active run with these keys, or (None, why not)."""
    tags = active_run.data.tags
    for suffix, _ in searches_in(tags):
        if tags.get(SEARCH_TAG + suffix) == keys.search:
            return _resumption(client, active_run, suffix, own_parent=False)
    return None, f"the active MLflow run {active_run.info.run_id} holds no search with this " \
                 "space, algorithm and objective"


def _resumption(client, run, suffix, own_parent):
    tags, params = run.data.tags, run.data.params
    fmin_uuid = tags.get(FMIN_UUID_TAG + suffix)
    records, stale = load_search(client, run.info.experiment_id, run.info.run_id, fmin_uuid)
    max_evals = params.get(MAX_EVALS_PARAM + suffix)
    if max_evals is not None and max_evals.isdigit() and len(records) >= int(max_evals):
        return None, (f"run {run.info.run_id} is the same search, and it already has all its "
                      f"{max_evals} trials")
    return Resumption(run.info.run_id, run.info.experiment_id, suffix, fmin_uuid, records, stale,
                      own_parent, dict(tags)), None


def reopen(client, resumption, end_run):
    """Before the continued search runs: the trial runs the earlier driver left open are ended (by
    `end_run(client, run_id, status)`), the parent is RUNNING again."""
    from mlflow.entities import RunTag

    for run_id, status in resumption.stale_runs:
        end_run(client, run_id, status)
    count = resumption.keys_tags.get(RESUMED_TAG + resumption.suffix, "0")
    count = int(count) + 1 if count.isdigit() else 1
    resumption.keys_tags[RESUMED_TAG + resumption.suffix] = str(count)
    client.log_batch(resumption.parent_id, tags=[
        RunTag(RESUMED_TAG + resumption.suffix, str(count)),
        RunTag(DRIVER_TAG + resumption.suffix, driver_tag())])
    if resumption.own_parent:
        client.update_run(resumption.parent_id, status="RUNNING")
    resumption.stale_runs = []


def trials_from_run(run_id: str, fmin_uuid: Optional[str] = None,
                    **sparktrials_arguments: Any) -> Any:
    """A SparkTrials holding the finished trials of the search tracked in MLflow run `run_id`.

    `fmin(..., trials=trials_from_run(run_id))` continues that run: its trials count toward
    max_evals and the algorithm learns from them; only the missing trials are evaluated, in new
    child runs of the same parent. A run that holds several searches (several fmin calls inside
    one active run) needs `fmin_uuid`. Other keyword arguments go to SparkTrials.
    """
    import mlflow
    from hyperopt import SparkTrials

    from runtime_ml.errors import UserInputError

    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    tags = run.data.tags
    if PARENT_RUN_TAG in tags:
        raise UserInputError(f"trials_from_run({run_id!r}): that is a trial's run; pass its "
                             f"parent run, trials_from_run({tags[PARENT_RUN_TAG]!r}).")
    searches = searches_in(tags)
    if fmin_uuid is not None:
        searches = [s for s in searches if s[1] == fmin_uuid]
    if len(searches) != 1:
        known = ", ".join(repr(uuid) for _, uuid in searches_in(tags)) or "none"
        what = (f"holds no search with fmin_uuid={fmin_uuid!r}" if fmin_uuid is not None else
                "holds several searches" if searches else "holds no search tracked by runtime-ml")
        raise UserInputError(f"trials_from_run({run_id!r}): the run {what} (its searches: "
                             f"{known}). Pass the parent run of an fmin"
                             f"{', and fmin_uuid=...' if len(searches) > 1 else ''}.")
    suffix, uuid = searches[0]
    records, stale = load_search(client, run.info.experiment_id, run_id, uuid)
    active = mlflow.active_run()
    own = tags.get(PARENT_KIND_TAG + suffix, "own") == "own" and not (
        active is not None and active.info.run_id == run_id)
    resumption = Resumption(run_id, run.info.experiment_id, suffix, uuid, records, stale, own,
                            dict(tags))
    trials = SparkTrials(**sparktrials_arguments)
    load_into(trials, resumption)
    spark_trials.mark_resumption(trials, resumption)
    logger.info("loaded %s of search %s from MLflow run %s; fmin with these trials "
                "continues that run.", summary(records), uuid, run_id)
    return trials
