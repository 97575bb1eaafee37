"""MLflow tracking of one SparkTrials fmin call: the parent run, a nested child run per trial,
their results and ends.

Only MLflow's public client API. Tracking never hurts the tuning: MLflow's calls run on daemon
threads off the trials' path (no trial waits for the store's health probe, the parent run or its
child run: trial_run), a store that stops answering switches tracking off for the rest of the call
with one warning, and a write the store refuses costs only that write (failures.failure_kind).
Where the runs go is decided before, in search.py.
"""

import math
import os
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple

from runtime_ml import log, server_health
from runtime_ml.compat import hyperopt_private, mlflow_private, spark_trials, versions
from runtime_ml.policy import note_after_launch, raise_first_in_strict_mode
from runtime_ml.redaction import redact, redacted_uri, secret_values
from runtime_ml.tracking import preload, records, resume, search, store
from runtime_ml.tracking.failures import TrackingStopped, failure_kind
from runtime_ml.tracking.pool import DaemonPool
from runtime_ml.tracking.records import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    NAN_LOSS_MESSAGE,
    PRINTED_ARTIFACT,
    RUN_SOURCE,
    RUN_STATUS_OF_OUTCOME,
    doc_ms,
    end_run_quietly,
    ms,
    param_key,
    param_text,
    trial_outcome,
)
from runtime_ml.worker.trial_run import PARENT_RUN_TAG, pending_trial_environment

logger = log.logger()

RUN_CREATE_DEADLINE = 10.0  # the longest a trial's result waits for its child run to exist
FINISH_DEADLINE = 30.0  # the longest fmin waits at the end for queued logging
SERVER_THREADS = 10  # the connections MLflow's HTTP session keeps: MLflow's default of...
HTTP_POOL_SIZE = "MLFLOW_HTTP_POOL_MAXSIZE"  # ...this variable, which a user may raise
BATCH_SIZE = 100  # params + tags per log_batch


def server_threads(environ: Any) -> int:
    """As many threads for a server as MLflow keeps connections to it: a thread more would open
    and drop a connection per request (and urllib3 warns each time)."""
    try:
        return max(1, int(environ.get(HTTP_POOL_SIZE, SERVER_THREADS)))
    except ValueError:
        return SERVER_THREADS


class FminFacts(NamedTuple):
    """What the driver tells tracking about one fmin call, as plain values."""

    algo: str  # the algorithm's name ('hyperopt.tpe')
    parallelism: int  # as runtime-ml fitted it to the cluster
    requested_parallelism: Any  # as the user gave it
    executor_hosts: FrozenSet[str]  # where the registered executors run
    more_executors_may_come: bool  # and whether more may come, elsewhere
    driver_address: Optional[str]  # spark.driver.host: where executors on other hosts reach us
    resume_on: bool = False  # spark.runtimeml.hyperopt.resume

    def executor_environment(self, uri: str) -> Dict[str, str]:
        return store.executor_environment(uri, self.executor_hosts, self.more_executors_may_come,
                                          self.driver_address)


class FminTracker:
    """Tracks one SparkTrials fmin call; implements the dispatcher's per-trial hooks."""

    def __init__(self, client: Any, uri: str, experiment_id: str, parent_id: Optional[str],
                 own_parent: bool, suffix: str, uuid_: str, space: Any,
                 executor_env: Dict[str, str], with_runs: Set[int], not_counted: Set[int]):
        """`parent_id` None: this fmin's own parent run is still to be made (open_parent).
        `client` None: the store is still to be opened, by the first pool task (open_store).
        `with_runs`: the trials held that have runs already (an earlier fmin's on the same
        SparkTrials, or a continued search's); `not_counted`: those that are not this search's."""
        self._client: Future = Future()  # the MlflowClient; None when it could not be made
        self._answers: Future = Future()  # whether the store answered when it was opened
        if client is not None:
            self._client.set_result(client)
            self._answers.set_result(True)
        self.uri = uri
        self.experiment_id = experiment_id
        self._parent: Future = Future()  # the parent run's id; None when it could not be made
        if parent_id is not None:
            self._parent.set_result(parent_id)
        self.own_parent = own_parent
        self.suffix = suffix
        self.uuid = uuid_
        self.space = space
        self.executor_env = executor_env
        # What runtime-ml knows to be secret (the credentials the driver and the executors hold,
        # a password in the URI): masked in everything this tracker writes (params, tags, what a
        # trial printed), as it is in runtime-ml's log lines.
        self.secrets = secret_values({**os.environ, **executor_env}, uris=(uri,))
        self.link: Optional[str] = None  # the experiment's runs in the server's UI
        self.choices = records.choice_labels(space)
        # A server answers several requests at once (when the fmin finishes, the last trials'
        # results and ends and the parent's counts and end go out side by side); a local store's
        # writes are CPU work under the GIL and one file's lock, where more threads only cost
        # more (measured: 32 trial runs into sqlite took 0.8 s of CPU on one thread, 1.0 s on four).
        self.pool = DaemonPool(1 if store.is_local_store(uri) else server_threads(os.environ))
        self._lock = threading.Lock()
        self._broken = False
        self._child_runs: Dict[int, Future] = {}  # tid -> the Future of its run, asked for at its start
        # trials with a run: asked for at their start, or held when the search was chosen
        self._with_runs: Set[int] = set(with_runs)
        # (Future, time.monotonic() asked) of child runs not made yet
        self._creating: List[Tuple[Future, float]] = []
        self._last_probe = -math.inf
        self.not_counted: Set[int] = set(not_counted)
        # runtime-ml's own errors, raised after the fmin in strict mode
        self.internal_errors: List[BaseException] = []
        self._pending: List[Future] = []
        self._finishing = False  # finish() has begun: what is left goes out at once
        # trial runs whose result is on its way to the store: run id -> (status, end time)
        self._results_on_their_way: Dict[str, Tuple[str, int]] = {}
        self._best_loss = math.inf
        self._finished_count = 0

    # -- start
    @classmethod
    def start(cls, trials: Any, arguments: Dict[str, Any], keys: Any, facts: FminFacts
              ) -> Optional["FminTracker"]:
        """Start tracking one fmin where search.decide says its runs go; None when it runs
        untracked (said why)."""
        importing = preload.running()  # then the application has not used MLflow yet
        uri, active_run = os.environ.get("MLFLOW_TRACKING_URI", ""), False
        if not importing:
            try:
                import mlflow
            except ImportError:
                logger.warning("MLflow is not installed, so this fmin is not tracked (pip install "
                               "mlflow).")
                return None
            uri, active_run = mlflow.get_tracking_uri(), mlflow.active_run() is not None
        path = search.sqlite_file(uri)
        plan = search.decide(search.SearchFacts(
            continues_a_search=spark_trials.resumption(trials) is not None,
            resume_on=facts.resume_on, held_trials=len(trials.trials), mlflow_importing=importing,
            active_run=active_run,
            chosen_experiment=not importing and mlflow_private.mlflow_fluent_state()[1] is not None,
            environ={k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")},
            uri_file_exists=path is not None and os.path.exists(path)))
        if plan.note:
            logger.info("%s", plan.note)
        held = {trial["tid"] for trial in hyperopt_private.unsynced_trial_docs(trials)}
        if plan.while_importing is not None:
            return cls._start_fresh(trials, arguments, keys, facts, *plan.while_importing,
                                    client=None, held=held)
        import mlflow
        from mlflow import MlflowClient

        uri = mlflow.get_tracking_uri()
        if not plan.store_first:
            return cls._start_fresh(trials, arguments, keys, facts, uri,
                                    mlflow_private.active_experiment_id(),
                                    client=MlflowClient(uri), held=held)
        if not store.answers(uri, resume_wanted=plan.where == search.RESUME):
            return None
        client = MlflowClient(uri)
        chosen = search.open_search(client, plan, mlflow.active_run(), trials, keys,
                                    end_run_quietly)
        # every trial held now has a run: an earlier fmin's, or one of the search just loaded;
        # a continued search counts the trials it loaded, a new one only its own
        tracker = cls(client, uri, chosen.experiment_id, chosen.parent_id, chosen.own_parent,
                      chosen.suffix, chosen.fmin_uuid, arguments["space"],
                      facts.executor_environment(uri),
                      with_runs={t["tid"] for t in hyperopt_private.unsynced_trial_docs(trials)},
                      not_counted=held if chosen.resumption is None else set())
        tracker.begin(trials, arguments, keys, facts, chosen.resumption)
        return tracker

    @classmethod
    def _start_fresh(cls, trials, arguments, keys, facts, uri, experiment_id, client, held):
        """A fresh search with this fmin's own parent run: its first trials launch at once, while
        the tracker's first thread asks whether the store answers (a server's /health: a round
        trip, and up to server_health.HEALTH_TIMEOUT for one that is cut off) and, when MLflow is still being
        imported (`client` None), makes the client once the import ends. Their runs are made
        after that, with their own start times. `held`: the trials an earlier fmin on the same
        SparkTrials ran (they have runs, and are not this search's)."""
        tracker = cls(None, uri, experiment_id, None, True, "", records.fmin_uuid(),
                      arguments["space"], facts.executor_environment(uri),
                      with_runs=held, not_counted=held)
        tracker.begin(trials, arguments, keys, facts, None, unchecked_client=client)
        return tracker

    @property
    def client(self) -> Any:
        """The MlflowClient (waiting for it while it is made); TrackingStopped when the store could
        not be opened."""
        client = self._client.result()
        if client is None:
            raise TrackingStopped()
        return client

    def _open_store(self, client):
        """On the tracker's first thread: the client first (`client` None: MLflow was still being
        imported; it is made here), so that the parent run's request goes out at once; then,
        side by side with it, whether the server answers /health. A server that does not answer
        leaves this fmin untracked, as does a store MLflow refuses (each said once, as when found
        before the first trial)."""
        try:
            if client is None:
                from mlflow import MlflowClient

                client = MlflowClient(self.uri)
        except Exception as error:
            if not self._kept_if_ours(error, "opening the store", "this fmin is not tracked."):
                store.could_not_start(self.uri, error)
            client = None
        self._client.set_result(client)  # the parent run's request goes out now
        answers = client is not None and store.answers(self.uri)
        if not answers:
            with self._lock:
                self._broken = True
        self._answers.set_result(answers)

    def begin(self, trials: Any, arguments: Dict[str, Any], keys: Any, facts: FminFacts,
              resumption: Any, unchecked_client: Any = None) -> None:
        """The store, when it is still to be opened (a fresh search: the tracker's first thread
        asks whether it answers, and makes the client unless `unchecked_client` is one); the
        parent run, made in the background (or said where it is); then its description."""
        if not self._client.done():
            self._pending.append(self.pool.submit(self._open_store, unchecked_client))
        genai_ui = versions.mlflow_ui_has_genai_view(versions.installed_version("mlflow"))
        self.link = records.runs_view_link(self.uri, self.experiment_id, genai_ui)
        if self._parent.done():
            self._say_where(self._parent.result())
        else:
            self._pending.append(self.pool.submit(self._open_parent))
        if resumption is not None:  # best_trial_loss and its steps go on from the trials held
            from hyperopt import base

            finished = [t for t in trials.trials if t["state"] == base.JOB_STATE_DONE]
            self._finished_count = len(finished)
            self._best_loss = min((float(t["result"]["loss"]) for t in finished
                                   if trial_outcome(t) == "success"), default=math.inf)
        else:
            timeout = arguments.get("timeout")
            params = {
                "max_evals": arguments.get("max_evals"),
                "actual_parallelism": facts.parallelism,
                "parallelism": facts.requested_parallelism,
                "timeout": timeout if timeout is not None else trials.timeout,
                "algo": facts.algo,
                "max_queue_len": arguments.get("max_queue_len"),
            }
            tags = {"runSource": RUN_SOURCE, "fmin_uuid": self.uuid, "space": records.space_text(self.space),
                    resume.PARENT_KIND_TAG: "own" if self.own_parent else "active",
                    resume.DRIVER_TAG: resume.driver_tag()}
            tags.update(keys.tags())
            self._later(self._log_parent, params, tags)
        if genai_ui:
            self._later(self._label_the_experiment)

    @property
    def parent_id(self) -> Optional[str]:
        """The parent run's id (waiting for it while it is made), None if it could not be made."""
        try:
            return self._parent.result(timeout=RUN_CREATE_DEADLINE)
        except FutureTimeout as error:
            self._break("creating the fmin's parent run", error)
            return None

    def _open_parent(self):
        """This fmin's own parent run, made on the tracker's first thread while the first trials
        launch; a store that cannot make it stops tracking (said once)."""
        if self._client.result() is None:  # the store could not be opened (said once)
            self._parent.set_result(None)
            return
        try:
            parent = self.client.create_run(self.experiment_id, tags={"runSource": RUN_SOURCE},
                                            run_name=f"hyperopt-fmin-{self.uuid}")
        except Exception as error:
            self._kept_if_ours(error, "creating the parent run", "this fmin is not tracked.")
            if self._answers.result():  # else the store's silence was said once already
                self._break("creating the fmin's parent run", error)
            self._parent.set_result(None)
            return
        if not self._answers.result():  # made although /health did not answer: not left open
            try:
                self._end_run(parent.info.run_id, "KILLED", None)
            except Exception as error:  # the store's failure was said once already
                self._kept_if_ours(error, "ending the parent run", "this fmin is not tracked.")
            self._parent.set_result(None)
            return
        self._parent.set_result(parent.info.run_id)
        self._say_where(parent.info.run_id)

    def _say_where(self, parent_id):
        logger.info("tracking this fmin in MLflow run %s (%s)%s", parent_id,
                    redacted_uri(self.uri), f"; its runs: {self.link}" if self.link else "")

    def _label_the_experiment(self):
        """MLflow 3 labels an experiment by the tag EXPERIMENT_KIND_TAG (GenAI or machine
        learning); runtime-ml's runs are machine learning. A kind the user set is kept."""
        if EXPERIMENT_KIND_TAG not in self.client.get_experiment(self.experiment_id).tags:
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG,
                                           EXPERIMENT_KIND)

    def _log_parent(self, params, tags):
        from mlflow.entities import Param, RunTag

        self._on_parent(
            self._log_batch,
            params=[Param(k + self.suffix, param_text(v)) for k, v in params.items()],
            tags=[RunTag(k if k == "runSource" else k + self.suffix, v) for k, v in tags.items()],
        )

    def _log_batch(self, run_id, metrics=(), params=(), tags=()):
        """log_batch in chunks of BATCH_SIZE params + tags (MLflow's limit per call)."""
        from mlflow.entities import Param

        items = [type(item)(self._mask(item.key), self._mask(item.value))
                 for item in list(params) + list(tags)]
        for start in range(0, max(1, len(items)), BATCH_SIZE):
            chunk = items[start:start + BATCH_SIZE]
            self.client.log_batch(
                run_id,
                metrics=list(metrics) if start == 0 else [],
                params=[i for i in chunk if isinstance(i, Param)],
                tags=[i for i in chunk if not isinstance(i, Param)],
            )

    def _mask(self, text):
        return redact(text, self.secrets)

    # -- I/O plumbing: off the trials' path; a store that stops answering switches tracking off
    def _guarded(self, what, function, *args):
        if self._broken:
            return None
        try:
            return function(*args)
        except Exception as error:
            self._failed(what, error)
            return None

    def _kept_if_ours(self, error, what, consequence):
        """True when `error` is runtime-ml's own (failure_kind 'internal'): one warning, and kept
        for strict mode; a store's or network's error is the caller's to say."""
        if failure_kind(error, lambda: True) != "internal":
            return False
        note_after_launch(self.internal_errors, f"tracking ({what})", consequence, error)
        return True

    def _failed(self, what, error):
        """One MLflow call failed; returns what it meant (failure_kind). Tracking stops when the
        store no longer answers; a write the store refused costs only that write; runtime-ml's own
        bug is kept for strict mode."""
        kind = failure_kind(error, lambda: server_health.unreachable(self.uri) is None)
        if kind == "unreachable":
            self._break(what, error)
        elif kind == "refused":
            logger.warning("MLflow refused a write while %s (%s: %s); the other "
                           "trials are still tracked.", what, type(error).__name__,
                           store.first_line(error))
        else:
            note_after_launch(self.internal_errors, f"tracking ({what})",
                              "the other trials are still tracked.", error)
        return kind

    def _break(self, what, error):
        with self._lock:
            if self._broken:
                return
            self._broken = True
        parent = self._parent.result() if self._parent.done() else None
        where = (f"runs still open under parent run {parent} stay as they are (not marked "
                 "finished)" if parent else "no parent run was made")
        logger.warning("MLflow tracking to %s failed while %s (%s: %s); the rest of "
                       "this fmin is not tracked and %s; the tuning goes on.",
                       redacted_uri(self.uri), what, type(error).__name__, error, where)

    def _later(self, function, *args):
        if not self._broken:
            self._pending.append(
                self.pool.submit(self._guarded, function.__name__.strip("_"), function, *args))

    # -- per trial (dispatcher threads)
    def trial_started(self, trial: dict) -> dict:
        """Asks for the trial's child run in the background (the trial does not wait for it) and
        returns the environment that lets the objective find that run (trial_run)."""
        if self._broken:
            return {}
        self._watch_for_a_stalled_server()
        tid = trial["tid"]
        created = self.pool.submit(
            self._guarded, "creating a trial run", self._create_child, tid, ms())
        with self._lock:
            self._with_runs.add(tid)
            self._child_runs[tid] = created
            self._creating.append((created, time.monotonic()))
        if not self.executor_env:
            return {}
        return dict(self.executor_env, **pending_trial_environment(
            self.uuid, tid, self.executor_env["MLFLOW_TRACKING_URI"], self.experiment_id))

    def _watch_for_a_stalled_server(self):
        """A child run asked for more than RUN_CREATE_DEADLINE ago and still not made: the server
        may be cut off (no answer, so MLflow's client retries each request for minutes, holding
        the tracking threads). Its /health is asked on a thread of its own, at most once per
        RUN_CREATE_DEADLINE; no answer stops tracking, and the next trials run as untracked ones
        instead of each waiting for a run that will not come."""
        now = time.monotonic()
        with self._lock:
            self._creating = [(f, asked) for f, asked in self._creating if not f.done()]
            if now - self._last_probe < RUN_CREATE_DEADLINE or not any(
                    now - asked > RUN_CREATE_DEADLINE for _, asked in self._creating):
                return
            self._last_probe = now
        threading.Thread(target=self._probe_stalled_server, name="runtime-ml-tracking-probe",
                         daemon=True).start()

    def _probe_stalled_server(self):
        why = server_health.unreachable(self.uri)
        if why is not None:
            self._break("creating trial runs", TimeoutError(
                f"no trial run made within {RUN_CREATE_DEADLINE:.0f} s, and /health: {why}"))

    def trial_finished(self, trial: dict, printed: Optional[str] = None) -> None:
        ended = ms()
        with self._lock:
            created = self._child_runs.pop(trial["tid"], None)
            self._finished_count += 1
            step = self._finished_count
        result = trial.get("result") or {}
        status = trial_outcome(trial)
        # A success has a finite float loss (hyperopt's evaluate converted it; NaN is a failure).
        loss = float(result["loss"]) if status == "success" else None

        if loss is not None:
            with self._lock:
                improved = loss < self._best_loss
                if improved:
                    self._best_loss = loss
            if improved:
                self._later(self._log_metric, "best_trial_loss" + self.suffix, loss, step)
        if created is None:
            return
        self._later(self._end_created_child, created, trial, loss, ended, printed)

    def _end_created_child(self, created, trial, loss, ended, printed):
        """_end_child once the run asked for at the trial's start exists (on a pool thread: that
        request was queued before this one, so it is running or done). The result's MLflow
        entities are made here, not on the trial's thread, which may not wait for MLflow's
        import."""
        run = created.result(timeout=RUN_CREATE_DEADLINE)  # the deadline: a stalled server
        if run is not None:  # else its creation failed and said so
            metrics, params, tags, status, ended = self._child_result(trial, loss, ended)
            self._end_child(run.info.run_id, metrics, params, tags, status, ended, printed)

    def _child_result(self, trial, loss, ended):
        """(metrics, params, tags, run status, end time): what ends a trial's child run."""
        from hyperopt import base
        from mlflow.entities import Metric, Param, RunTag

        result = trial.get("result") or {}
        state = trial["state"]
        status = trial_outcome(trial)
        tags = [RunTag("trial_status", status)]
        record = resume.trial_record(trial)
        if record is not None:  # what a continued search loads back (runtime_ml.tracking.resume)
            tags += [RunTag(k, v) for k, v in resume.record_tags(record, self._mask).items()]
        if state == base.JOB_STATE_ERROR and trial["misc"].get("error"):
            type_text, detail = trial["misc"]["error"]
            name, message = records.error_summary((type_text, self._mask(str(detail))))
            tags += [RunTag("error_type", name), RunTag("error_message", message)]
        elif state == base.JOB_STATE_DONE and records.is_nan_loss(result):
            tags += [RunTag("error_type", "NaNLoss"), RunTag("error_message", NAN_LOSS_MESSAGE)]
        metrics = []
        if loss is not None:
            metrics.append(Metric("loss", loss, ended, 0))
        try:
            params = records.trial_params(self.space, trial["misc"]["vals"], self.choices)
        except Exception as error:  # the run keeps the raw values hyperopt drew
            note_after_launch(self.internal_errors, f"naming trial {trial['tid']}'s params",
                              "its run holds the raw values hyperopt drew.", error)
            params = {param_key(k): param_text(v[0]) for k, v in trial["misc"]["vals"].items() if v}
        return (metrics, [Param(k, v) for k, v in params.items()], tags,
                RUN_STATUS_OF_OUTCOME[status], ended)

    def _child_after_the_fact(self, trial, now):
        """The run of a trial that ended without runtime-ml's per-trial hooks, with the times its
        document holds (a trial cancelled before it started: KILLED, as hyperopt counts it)."""
        started, ended = (doc_ms(trial.get(key), now) for key in ("book_time", "refresh_time"))
        loss = float(trial["result"]["loss"]) if trial_outcome(trial) == "success" else None
        run = self._create_child(trial["tid"], started)
        if run is not None:
            self._end_child(run.info.run_id, *self._child_result(trial, loss, max(started, ended)))

    def _create_child(self, tid, started):
        """The trial's run, nested in the parent once that exists (None: the parent was not made)."""
        parent_id = self.parent_id
        if parent_id is None:
            return None
        tags = {PARENT_RUN_TAG: parent_id, "fmin_uuid": self.uuid, "runSource": RUN_SOURCE,
                "trial_id": str(tid)}
        return self.client.create_run(self.experiment_id, started, tags, f"trial-{tid}")

    def _on_parent(self, function, *args, **kwargs):
        """`function(parent_id, ...)` once the parent run exists (nothing if it was not made)."""
        parent_id = self.parent_id
        if parent_id is not None:
            function(parent_id, *args, **kwargs)

    def _log_metric(self, key, value, step):
        self._on_parent(self.client.log_metric, key, value, step)

    def _log_counts(self, metrics):
        self._on_parent(self._log_batch, metrics)

    def _end_parent(self, status, ended):
        """Quietly, as a trial's run: MlflowClient.set_terminated would ask the server for the run
        once more to print its link (a round trip more before fmin returns; runtime-ml said where
        the runs are when the fmin started)."""
        self._on_parent(self._end_run, status, ended)

    def _end_child(self, run_id, metrics, params, tags, status, ended, printed=None):
        """The trial's result (and what it printed, as an artifact), then the end of its run; a
        result the store refuses still ends the run. Once the fmin is finishing, the end goes out
        at once, side by side with the result (finish): a run may then be seen ended a round trip
        before its result, so that fmin returns a round trip sooner."""
        with self._lock:
            side_by_side = self._finishing
            if not side_by_side:
                self._results_on_their_way[run_id] = (status, ended)
        if side_by_side:
            self._later(self._end_run, run_id, status, ended)
        try:
            self._log_result(run_id, metrics, params, tags)
            if printed:
                self.client.log_text(run_id, self._mask(printed), PRINTED_ARTIFACT)
        except Exception as error:
            if self._failed(f"writing the result of trial run {run_id}", error) == "unreachable":
                with self._lock:
                    self._results_on_their_way.pop(run_id, None)
                return  # tracking is off: the run stays as it is (said once)
        with self._lock:  # else finish() sent the end meanwhile
            ends_here = self._results_on_their_way.pop(run_id, None) is not None
        if ends_here:
            self._end_run(run_id, status, ended)

    def _end_run(self, run_id, status, ended):
        end_run_quietly(self.client, run_id, status, ended)

    def _log_result(self, run_id, metrics, params, tags):
        """What the objective logged into its run wins: a param the run already holds (e.g.
        `n_estimators` logged as 30 where runtime-ml has 30.0, or by an autolog) is skipped."""
        try:
            self._log_batch(run_id, metrics=metrics, params=params, tags=tags)
        except Exception as error:
            if failure_kind(error, lambda: True) != "refused":
                raise
            held = self.client.get_run(run_id).data.params
            own = [param for param in params if param.key not in held]
            if len(own) == len(params):  # refused for another reason
                raise
            self._log_batch(run_id, metrics=metrics, params=own, tags=tags)

    # -- end of the fmin call (the caller's thread)
    def finish(self, trials: Any, error: Optional[BaseException] = None) -> None:
        from hyperopt import base
        from mlflow.entities import Metric

        deadline = time.monotonic() + FINISH_DEADLINE
        with self._lock:
            self._finishing = True
            on_their_way, self._results_on_their_way = self._results_on_their_way, {}
        for run_id, (run_status, end_time) in on_their_way.items():  # their ends go out now
            self._later(self._end_run, run_id, run_status, end_time)
        try:
            now = ms()
            # This search's trials (not those an earlier fmin on the same SparkTrials ran), counted
            # as their child runs report them: hyperopt's count_successful_trials() also counts
            # results with status 'fail' or a NaN loss, which are failed runs here.
            ended = [t for t in hyperopt_private.unsynced_trial_docs(trials)
                     if t["tid"] not in self.not_counted and t["state"] in (
                         base.JOB_STATE_DONE, base.JOB_STATE_ERROR, base.JOB_STATE_CANCEL)]
            outcomes = [trial_outcome(t) for t in ended]
            counts = {
                "successful_trials_count": outcomes.count("success"),
                "failed_trials_count": outcomes.count("failure"),
                "cancelled_trials_count": outcomes.count("cancelled"),
                "total_trials_count": len(outcomes),
            }
            # A trial whose start runtime-ml's dispatch never saw gets its run too, after the
            # fact: one cancelled before it started, or every trial when the fmin fell back to
            # stock hyperopt's dispatch after tracking had started.
            for trial in ended:
                if trial["tid"] not in self._with_runs:
                    self._later(self._child_after_the_fact, trial, now)
            self._later(self._log_counts,
                        [Metric(k + self.suffix, float(v), now, 0) for k, v in counts.items()])
            if self.own_parent:
                status = "FINISHED"
                if isinstance(error, KeyboardInterrupt):
                    status = "KILLED"
                elif error is not None:
                    status = "FAILED"
                self._later(self._end_parent, status, now)
            for future in self._pending:
                if self._broken:  # the server is gone: nothing more to wait for
                    break
                try:
                    future.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception as wait_error:
                    self._break("finishing the fmin's runs", wait_error)
                    break
        finally:  # the pool's threads end even if something above failed
            self.pool.shutdown(time.monotonic() if self._broken else deadline)
        if error is None:
            raise_first_in_strict_mode(self.internal_errors)
