"""The hyperopt internals runtime-ml's dispatch relies on. If one of these fails after a hyperopt
upgrade, runtime_ml/dispatch.py needs a look before anything else."""

import inspect

import hyperopt
from hyperopt import base
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


def test_a_rejected_result_is_visible_in_evaluates_frame_for_the_hint():
    from runtime_ml.results import STATUS_STRINGS, rejected_result, result_problem

    assert tuple(hyperopt.STATUS_STRINGS) == STATUS_STRINGS

    domain = base.Domain(lambda x: {"loss": x}, hyperopt.hp.uniform("x", 0, 1))
    try:
        domain.evaluate({"x": 0.5}, ctrl=None, attach_attachments=False)
    except KeyError as error:
        assert rejected_result(error) == (True, {"loss": 0.5})
        assert "without 'status'" in result_problem({"loss": 0.5})
    else:
        raise AssertionError("hyperopt accepted a result without 'status'")

    def raises(x):
        raise KeyError("status")  # the objective's own error: no hint

    try:
        base.Domain(raises, hyperopt.hp.uniform("x", 0, 1)).evaluate({"x": 0.5}, ctrl=None)
    except KeyError as error:
        assert rejected_result(error) == (False, None)
