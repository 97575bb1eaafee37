"""The hyperopt internals runtime-ml's dispatch relies on, and the parts of hyperopt's
Domain.evaluate that runtime_ml/trial/evaluation.py repeats on the driver. If one of these fails
after a hyperopt upgrade, runtime_ml/driver/spark_fmin.py, dispatcher.py and
trial/evaluation.py need a look before anything else."""

import inspect
import pickle
from decimal import Decimal

import hyperopt
import numpy as np
import pytest
from hyperopt import base, hp
from hyperopt.pyll import scope
from hyperopt.spark import SparkTrials


def parameters(function):
    return list(inspect.signature(function).parameters)


def test_fmin_iter_takes_what_dispatch_passes():
    expected = {"algo", "domain", "trials", "rstate", "max_queue_len", "poll_interval_secs",
                "max_evals", "timeout", "loss_threshold", "verbose", "show_progressbar",
                "early_stop_fn", "trials_save_file"}
    assert expected <= set(parameters(hyperopt.FMinIter.__init__))
    assert callable(hyperopt.FMinIter.exhaust)


def test_fmin_iter_reads_max_queue_len_and_poll_interval_as_attributes():
    source = inspect.getsource(hyperopt.FMinIter.run)
    assert "self.max_queue_len" in source and "self.poll_interval_secs" in source
    assert "trials.insert_trial_docs" in source or "self.trials.insert_trial_docs" in source


def test_fmin_iter_reads_its_poll_interval_only_to_sleep():
    """runtime-ml's FMinIter waits for the dispatcher when the interval is read (hyperopt_loop):
    a read anywhere but a sleep would wait there too."""
    source = inspect.getsource(hyperopt.FMinIter)
    reads = source.count("self.poll_interval_secs")
    assert reads >= 2
    assert source.count("time.sleep(self.poll_interval_secs)") == reads - 1  # and the assignment
    assert "self.poll_interval_secs = poll_interval_secs" in source


def test_trial_document_helpers_and_states():
    assert (base.JOB_STATE_NEW, base.JOB_STATE_RUNNING, base.JOB_STATE_DONE,
            base.JOB_STATE_ERROR, base.JOB_STATE_CANCEL) == (0, 1, 2, 3, 4)
    assert base.spec_from_misc({"vals": {"x": [1.5], "y": []}, "idxs": {}}) == {"x": 1.5}
    assert "attach_attachments" in parameters(base.Domain.evaluate)
    assert callable(base.validate_timeout) and callable(base.validate_loss_threshold)


def test_spark_trials_fmin_signature_is_what_the_patch_binds():
    assert parameters(SparkTrials.fmin.__wrapped__ if hasattr(SparkTrials.fmin, "__wrapped__")
                      else SparkTrials.fmin)[:15] == [
        "self", "fn", "space", "algo", "max_evals", "timeout", "loss_threshold", "max_queue_len",
        "rstate", "verbose", "pass_expr_memo_ctrl", "catch_eval_exceptions", "return_argmin",
        "show_progressbar", "early_stop_fn"]


def test_spark_trials_keeps_the_attributes_dispatch_uses(spark):
    trials = SparkTrials(parallelism=2, spark_session=spark)
    for name in ("_spark", "_fmin_cancelled", "_fmin_cancelled_reason", "timeout",
                 "loss_threshold", "parallelism"):
        assert hasattr(trials, name), name
    for name in ("count_successful_trials", "count_failed_trials", "count_cancelled_trials",
                 "count_total_trials", "count_by_state_unsynced", "refresh"):
        assert callable(getattr(trials, name)), name


def test_hyperopts_status_strings_are_the_ones_the_result_hint_knows():
    from runtime_ml.trial.results import STATUS_STRINGS

    assert tuple(hyperopt.STATUS_STRINGS) == STATUS_STRINGS


def _pairs():
    return (pair for pair in [("loss", 0.25), ("status", "ok")])


RETURN_VALUES = [
    0.5, 3, True, np.float32(0.25), np.int64(2), float("nan"), 1 + 2j, Decimal("1.5"),
    np.array(0.5), "0.5", None, [("loss", 1.0), ("status", "ok")], _pairs,
    {"loss": 1, "status": "ok"}, {"loss": "0.5", "status": "ok", "extra": [1, 2]},
    {"loss": np.float64(0.5), "status": "ok", "attachments": {"model": b"bytes"}},
    {"status": "fail"}, {"status": "fail", "loss": "not a number"}, {"loss": 0.5},
    {"status": "bogus", "loss": 1}, {"status": "ok"}, {"status": "ok", "loss": None},
    {"status": "ok", "loss": "abc"}, {"status": "ok", "loss": [1]},
]


def _outcome(compute):
    try:
        return "result", compute()
    except Exception as error:
        return type(error), str(error)


def _value_id(value):
    """The same id in every process (pytest-xdist's workers compare their collections)."""
    return value.__name__ if callable(value) else repr(value)


@pytest.mark.parametrize("value", RETURN_VALUES, ids=_value_id)
def test_the_result_made_on_the_driver_is_the_one_domain_evaluate_makes(value):
    from runtime_ml.trial.evaluation import hyperopt_result
    from runtime_ml.worker.task import shipped_output

    def returned():
        return value() if callable(value) else value

    stock = _outcome(lambda: base.Domain(lambda _: returned(), hp.uniform("x", 0, 1)).evaluate(
        {"x": 0.5}, ctrl=None, attach_attachments=False))
    ours = _outcome(lambda: hyperopt_result(pickle.loads(pickle.dumps(shipped_output(returned())))))
    assert repr(ours) == repr(stock)


SPACES = [
    hp.uniform("x", -1, 1),
    {"x": hp.quniform("x", 0, 10, 1), "n": scope.int(hp.qloguniform("n", 0, 3, 1)),
     "model": hp.choice("model", [{"kind": "a", "depth": hp.randint("depth", 5)},
                                  {"kind": "b", "rate": hp.normal("rate", 0, 1)}])},
    [hp.pchoice("p", [(0.3, "low"), (0.7, "high")]), (1, "literal", {"nested": [2.5]})],
    scope.add(hp.uniform("a", 0, 1), hp.uniform("b", 0, 1)),
]


@pytest.mark.parametrize("space", SPACES, ids=["scalar", "nested choice", "list", "pyll add"])
def test_the_values_evaluated_on_the_driver_are_the_ones_domain_evaluate_passes(space):
    from runtime_ml.trial.evaluation import space_values

    received = []
    domain = base.Domain(lambda values: received.append(values) or 0.0, space)
    rng = np.random.default_rng(3)
    for _ in range(5):
        [doc] = hyperopt.rand.suggest([0], domain, hyperopt.Trials(), rng.integers(2 ** 31))
        config = base.spec_from_misc(doc["misc"])
        domain.evaluate(config, ctrl=None, attach_attachments=False)
        assert repr(space_values(domain, config)) == repr(received.pop())


def test_an_objective_asking_for_expr_memo_ctrl_is_called_as_domain_evaluate_calls_it():
    from runtime_ml.trial.evaluation import call_objective

    def low_level(expr, memo, ctrl):
        return {"loss": 0.0, "status": "ok", "ctrl": ctrl, "labels": sorted(
            node.arg["label"].obj for node in memo)}

    low_level.fmin_pass_expr_memo_ctrl = True
    domain = base.Domain(low_level, {"x": hp.uniform("x", 0, 1)})
    config = {"x": 0.5}
    assert call_objective(domain, config) == domain.evaluate(config, ctrl=None,
                                                             attach_attachments=False)
