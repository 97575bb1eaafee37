"""What runtime-ml does around one SparkTrials fmin call (the patch in `patch.py` calls this)."""

import inspect
from typing import Any, Optional

from runtime_ml import conf, log
from runtime_ml.compat import spark_trials, versions
from runtime_ml.driver.cluster import EXECUTOR_WAIT_SECONDS, read_cluster_facts, read_profile_slots
from runtime_ml.driver.parallelism import decide_parallelism
from runtime_ml.driver.session import conf_get
from runtime_ml.driver.validation import (
    check_max_evals,
    check_parallelism,
    check_timeout,
    objective_size_note,
    serialize_objective,
    timeout_note,
)
from runtime_ml.policy import FallBackToStock, caused_outside, report_internal_error
from runtime_ml.tracking import resume

logger = log.logger()


def spark_session_of(trials):
    """The session this SparkTrials runs on (hyperopt keeps it as `_spark`), else the active one.

    Never creates a session.
    """
    spark = spark_trials.session(trials)
    if spark is not None:
        return spark
    try:
        from pyspark.sql import SparkSession

        return SparkSession.getActiveSession()
    except Exception:
        return None


def algo_name(algo: Any) -> str:
    """`tpe.suggest` -> 'hyperopt.tpe' (also through functools.partial)."""
    target = getattr(algo, "func", algo)
    return getattr(target, "__module__", None) or type(target).__name__


class FminCall:
    """One SparkTrials fmin call: decides what to change before hyperopt runs, and cleans up after."""

    def __init__(self, trials, arguments, args, kwargs):
        self.trials = trials
        self.arguments = arguments  # name -> value, as hyperopt's SparkTrials.fmin received them
        self.args = args
        self.kwargs = kwargs
        self.tracker = None

    @classmethod
    def begin(cls, original, trials, args, kwargs):
        try:
            bound = inspect.signature(original).bind(trials, *args, **kwargs)
        except TypeError:
            # The user's own mistake: hand the call to hyperopt untouched so it reports it.
            return cls(trials, None, args, kwargs)
        bound.apply_defaults()
        call = cls(trials, dict(bound.arguments), args, kwargs)
        call.prepare()
        return call

    def prepare(self) -> None:
        log.show_when_unconfigured()
        # The user's mistakes first: raised before any cluster wait, trial or MLflow run.
        check_timeout(self.arguments.get("timeout"))
        note = timeout_note(self.arguments.get("timeout"))
        if note:
            logger.warning("%s", note)
        check_max_evals(self.arguments.get("max_evals"), len(self.trials.trials),
                        self.arguments.get("return_argmin", True))
        self.payload = serialize_objective(self.arguments["fn"])
        level, text = objective_size_note(len(self.payload))
        getattr(logger, level)("%s", text)
        spark = spark_session_of(self.trials)
        self.tracking = conf.read_spark_flag(conf.TRACK_HYPEROPT, spark)
        self.fresh_workers = conf.read_spark_flag(conf.FRESH_WORKER_PER_TRIAL, spark)
        self.keep_output = conf.read_spark_flag(conf.TRIAL_OUTPUT, spark)
        self.sequential_at_one = conf.read_spark_flag(conf.SEQUENTIAL_AT_ONE, spark)
        self.spread = conf.read_spark_flag(conf.SPREAD_TRIALS, spark)
        self.fast_tpe = conf.read_spark_flag(conf.FAST_TPE, spark)
        resume_on = self._resume_on(conf.read_spark_flag(conf.RESUME, spark))
        facts = read_cluster_facts(spark, wait_seconds=EXECUTOR_WAIT_SECONDS)
        self.decision = self._fit_parallelism(facts)
        self.tracker = self._start_tracking(facts, resume_on) if self.tracking.value else None
        logger.info(
            "SparkTrials fmin: max_evals=%s, parallelism=%s (requested %s)",
            self.arguments.get("max_evals"),
            self.decision.parallelism,
            self.decision.requested,
        )
        if not self.tracking.value:
            logger.info(
                "MLflow tracking of this fmin is off (%s=%s). To turn it on: "
                "spark.conf.set(%r, 'true').",
                conf.TRACK_HYPEROPT.name,
                self.tracking.raw,
                conf.TRACK_HYPEROPT.name,
            )

    def _resume_on(self, flag):
        """Whether resume is asked for (where the runs go is decided by tracking.search); checks
        trials_from_run's trials against this fmin's space first (the user's mistake, raised
        before anything runs)."""
        explicit = spark_trials.resumption(self.trials)
        if explicit is not None:
            resume.check_space(explicit, self.arguments["space"])
        if flag.value and not self.tracking.value:
            logger.info("%s is on, but MLflow tracking of this fmin is off, so there "
                        "is nothing to resume from; starting a fresh search.", conf.RESUME.name)
        return flag.value

    def _fit_parallelism(self, facts):
        """Decide from the cluster's real slots, and apply before hyperopt dispatches a trial."""
        requested = spark_trials.requested_parallelism(self.trials)
        check_parallelism(requested)  # made before activation, so not checked at construction
        profile = spark_trials.resource_profile(self.trials)  # as stock: never on local
        if profile is not None:
            facts = facts.for_profile(*read_profile_slots(spark_session_of(self.trials), facts,
                                                          profile))
        for note in facts.notes:
            logger.warning("%s", note)
        decision = decide_parallelism(
            requested, self.arguments.get("max_evals"), algo_name(self.arguments.get("algo")),
            facts.slot_facts(),
        )
        for reason in decision.reasons:
            log = logger.warning if reason.level == "warning" else logger.info
            log("%s", reason.text)
        # hyperopt's dispatcher reads trials.parallelism before launching each trial.
        spark_trials.set_parallelism(self.trials, decision.parallelism)
        return decision

    def _start_tracking(self, facts, resume_on):
        problem = versions.installed_problem("mlflow")  # said once at activation already
        if problem is not None:
            logger.info("%s.", problem)
            return None
        from runtime_ml.tracking.tracker import FminFacts, FminTracker

        try:
            name = algo_name(self.arguments.get("algo"))
            keys = resume.SearchKeys.of(self.arguments["fn"], self.arguments["space"],
                                        self.arguments.get("algo"), name)
            return FminTracker.start(self.trials, self.arguments, keys, FminFacts(
                algo=name, parallelism=self.decision.parallelism,
                requested_parallelism=self.decision.requested,
                executor_hosts=facts.executor_hosts,
                more_executors_may_come=facts.more_executors_may_come,
                driver_address=conf_get(spark_trials.session(self.trials), "spark.driver.host"),
                resume_on=resume_on))
        except Exception as error:  # the tuning goes on untracked
            if not caused_outside(error):
                report_internal_error("starting MLflow tracking", "this fmin is not tracked")
                return None
            import mlflow

            from runtime_ml.tracking.store import could_not_start

            could_not_start(mlflow.get_tracking_uri(), error)  # MLflow said no
            return None

    def execute(self, original):
        """Run the tuning job: runtime-ml's dispatch, or hyperopt's own when begin() bailed out."""
        if self.arguments is None:
            return original(self.trials, *self.args, **self.kwargs)
        from runtime_ml.driver.spark_fmin import run_spark_fmin

        arguments = {k: v for k, v in self.arguments.items() if k != "self"}
        payload, self.payload = self.payload, None  # the launcher keeps it while it is needed
        try:
            return run_spark_fmin(
                self.trials, **arguments, listener=self.tracker, payload=payload,
                queue_follows_slots=arguments.get("max_queue_len") in (None, 1),
                reuse_workers=not self.fresh_workers.value, keep_output=self.keep_output.value,
                sequential_at_one=self.sequential_at_one.value, spread=self.spread.value,
                fast_tpe=self.fast_tpe.value,
            )
        except FallBackToStock:  # runtime-ml's dispatch could not start; nothing was launched
            return original(self.trials, *self.args, **self.kwargs)

    def finish(self, result: Any = None, error: Optional[BaseException] = None) -> None:
        if self.tracker is not None:
            self.tracker.finish(self.trials, error)
