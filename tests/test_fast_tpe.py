"""runtime-ml's TPE proposes hyperopt's tpe.suggest's points, bit for bit, on the installed hyperopt
(CI runs both pins); hyperopt's tpe.suggest runs where it does not apply (driver/fast_tpe.py,
driver/tpe_densities.py)."""

import functools
import logging

import numpy as np
import pytest
from hyperopt import Trials, anneal, base, hp, rand, tpe
from hyperopt.pyll import scope

from runtime_ml import conf
from runtime_ml.compat import versions
from runtime_ml.driver import fast_tpe, tpe_densities

EVERY_DISTRIBUTION = {
    "uniform": hp.uniform("uniform", -2, 3),
    "quniform": hp.quniform("quniform", 0, 20, 2),
    "loguniform": hp.loguniform("loguniform", -4, 1),
    "qloguniform": hp.qloguniform("qloguniform", np.log(2), np.log(500), 1),
    "normal": hp.normal("normal", 1, 2),
    "qnormal": hp.qnormal("qnormal", 0, 10, 3),
    "lognormal": hp.lognormal("lognormal", 0, 1),
    "qlognormal": hp.qlognormal("qlognormal", 1, 1, 0.5),
    "randint": hp.randint("randint", 7),
    "randint_range": hp.randint("randint_range", 3, 12),
    "uniformint": hp.uniformint("uniformint", 1, 9),
    "choice": hp.choice("choice", ["a", "b", "c"]),
    "pchoice": hp.pchoice("pchoice", [(0.2, "x"), (0.8, "y")]),
}
CONDITIONAL = hp.choice("model", [
    {"kind": "tree", "depth": hp.quniform("depth", 1, 12, 1),
     "trees": hp.qloguniform("trees", np.log(10), np.log(1000), 10)},
    {"kind": "linear", "C": hp.loguniform("C", -5, 3),
     "penalty": hp.choice("penalty", ["l1", {"mix": hp.uniform("mix", 0, 1)}])},
    {"kind": "constant"},
])
SPACES = {"every distribution": EVERY_DISTRIBUTION, "conditional": CONDITIONAL,
          "one quantized": hp.quniform("q", -10, 10, 0.5)}
KEYWORDS = [{}, {"prior_weight": 0.3}, {"n_startup_jobs": 3}, {"n_EI_candidates": 7},
            {"gamma": 0.5}, {"verbose": False},
            {"prior_weight": 2.0, "n_startup_jobs": 0, "n_EI_candidates": 40, "gamma": 0.1}]


def outcome(doc, rng):
    """A random end for a trial: a loss (ties and NaN among them), failed, or still running/new."""
    pick = rng.random()
    if pick < 0.55:
        doc["state"], doc["result"] = base.JOB_STATE_DONE, {"status": "ok",
                                                             "loss": float(rng.normal())}
    elif pick < 0.65:
        doc["state"], doc["result"] = base.JOB_STATE_DONE, {"status": "ok", "loss": 0.5}
    elif pick < 0.68:
        doc["state"], doc["result"] = base.JOB_STATE_DONE, {"status": "ok", "loss": float("nan")}
    elif pick < 0.78:
        doc["state"], doc["result"] = base.JOB_STATE_ERROR, {"status": "fail"}
    elif pick < 0.9:
        doc["state"] = base.JOB_STATE_RUNNING
    # else: left NEW


def search(space, keywords, seed, steps):
    """A search whose every proposal is asked of hyperopt's tpe.suggest and of runtime-ml's on
    the same trials and seed; hyperopt's is kept and given a random end, and now and then an
    earlier unfinished trial gets one (a failed one leaves hyperopt's refreshed list). Yields both
    each step."""
    rng = np.random.default_rng(seed)
    domain = base.Domain(lambda params: 0.0, space)
    trials = Trials()
    ours = fast_tpe.replacing(functools.partial(tpe.suggest, **keywords))
    assert ours is not None
    for tid in range(steps):
        algo_seed = int(rng.integers(2 ** 31 - 1))
        theirs = tpe.suggest([tid], domain, trials, algo_seed, **keywords)
        mine = ours([tid], domain, trials, algo_seed)
        yield theirs, mine
        for doc in theirs:
            outcome(doc, rng)
        unfinished = [doc for doc in trials.trials
                      if doc["state"] in (base.JOB_STATE_NEW, base.JOB_STATE_RUNNING)]
        if unfinished and rng.random() < 0.4:  # an earlier trial ends now: a loss, or it fails
            outcome(unfinished[int(rng.integers(len(unfinished)))], rng)
        trials.insert_trial_docs(theirs)
        trials.refresh()


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("keywords", KEYWORDS, ids=lambda k: ",".join(k) or "defaults")
def test_runtime_mls_tpe_proposes_hyperopts_points_bit_for_bit(space_name, keywords):
    # 45 proposals per search, from hyperopt's 20 random start-up ones into TPE proper, on a
    # history of finished, tied, NaN, failed, running and new trials.
    compared = 0
    for seed in range(2):
        for theirs, mine in search(SPACES[space_name], keywords, seed, 45):
            assert mine == theirs
            compared += 1
    assert compared == 90


def test_a_long_history_gives_hyperopts_points_at_every_step():
    # 300 steps: the observed values kept between calls meet every kind of trial many times.
    for step, (theirs, mine) in enumerate(search(CONDITIONAL, {}, 11, 300)):
        assert mine == theirs, step


def test_a_document_replaced_in_the_history_is_read_again():
    """The values of the documents already read are kept; a history whose start changed (here a
    trial's document swapped for a copy with other values) is read again."""
    domain = base.Domain(lambda params: 0.0, EVERY_DISTRIBUTION)
    trials = Trials()
    ours = fast_tpe.replacing(functools.partial(tpe.suggest, n_startup_jobs=2))
    rng = np.random.default_rng(3)
    for tid in range(30):
        docs = rand.suggest([tid], domain, trials, int(rng.integers(1000)))
        outcome(docs[0], rng)
        trials.insert_trial_docs(docs)
        trials.refresh()
    assert ours([30], domain, trials, 5) == tpe.suggest([30], domain, trials, 5, n_startup_jobs=2)
    other = rand.suggest([3], domain, trials, 999)[0]
    trials._dynamic_trials[3]["misc"] = other["misc"]
    trials.refresh()
    assert ours([30], domain, trials, 5) == tpe.suggest([30], domain, trials, 5, n_startup_jobs=2)


def test_a_trial_finishing_while_its_loss_is_read_is_read_again():
    """Forced: the launcher writes the trial's result (trial_docs.write_result) just after TPE
    read its loss as missing. Its state was read before, RUNNING, so its loss is not kept as
    infinite: the next call reads 2.0."""
    from runtime_ml.driver.trial_docs import write_result

    class FinishedMeanwhile(dict):
        def __getitem__(self, key):
            value = super().__getitem__(key)
            if key == "result" and "written" not in self:
                dict.__setitem__(self, "written", True)
                write_result(self, {"status": "ok", "loss": 2.0})
            return value

    doc = FinishedMeanwhile(tid=0, state=base.JOB_STATE_RUNNING, result={"status": "new"},
                            misc={})
    shown = fast_tpe.ShownLosses()
    assert shown.of([doc]) == ([0], [float("inf")])
    assert shown.of([doc]) == ([0], [2.0])


def test_a_result_is_written_before_its_trial_shows_done():
    from runtime_ml.driver.trial_docs import write_result

    order = []

    class Recording(dict):
        def __setitem__(self, key, value):
            order.append(key)
            super().__setitem__(key, value)

    write_result(Recording(state=base.JOB_STATE_RUNNING), {"status": "ok", "loss": 1.0})
    assert order.index("result") < order.index("state")


def test_values_that_are_not_numbers_are_handed_over_as_lists():
    observed = fast_tpe.ObservedValues(["x", "y"])
    miscs = [{"tid": 0, "idxs": {"x": [0], "y": [0]}, "vals": {"x": [1.5], "y": ["a"]}},
             {"tid": 1, "idxs": {"x": [1], "y": []}, "vals": {"x": [2], "y": []}}]
    idxs, vals = observed.of(miscs)
    assert vals["y"] == ["a"] and idxs["y"] == [0]
    assert vals["x"].dtype == np.asarray([1.5, 2]).dtype and list(vals["x"]) == [1.5, 2.0]


def test_copies_of_a_trial_count_by_their_best_loss_as_in_hyperopt():
    # misc["from_tid"]: a document that is a copy of another trial counts for that trial.
    domain = base.Domain(lambda params: 0.0, EVERY_DISTRIBUTION)
    trials = Trials()
    rng = np.random.default_rng(8)
    for tid in range(25):
        docs = rand.suggest([tid], domain, trials, int(rng.integers(1000)))
        outcome(docs[0], rng)
        if tid % 5 == 4:
            docs[0]["misc"]["from_tid"] = tid - 3
        trials.insert_trial_docs(docs)
        trials.refresh()
    ours = fast_tpe.replacing(functools.partial(tpe.suggest, n_startup_jobs=5))
    for seed in range(5):
        assert ours([25], domain, trials, seed) == tpe.suggest([25], domain, trials, seed,
                                                               n_startup_jobs=5)


def test_hyperopts_log_lines_are_kept(caplog):
    domain = base.Domain(lambda params: 0.0, EVERY_DISTRIBUTION)
    lines = {}
    for name, algo in (("hyperopt", tpe.suggest), ("runtime-ml", fast_tpe.replacing(tpe.suggest))):
        trials = Trials()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hyperopt.tpe"):
            for tid in range(22):
                docs = algo([tid], domain, trials, tid)
                outcome(docs[0], np.random.default_rng(tid))
                trials.insert_trial_docs(docs)
                trials.refresh()
        lines[name] = [r.getMessage().split(" took ")[0] for r in caplog.records
                       if r.name == "hyperopt.tpe"]
    assert lines["runtime-ml"] == lines["hyperopt"] and len(lines["hyperopt"]) >= 44


@pytest.mark.parametrize("algo", [rand.suggest, anneal.suggest, functools.partial(anneal.suggest),
                                  functools.partial(tpe.suggest, [0]),
                                  functools.partial(tpe.suggest, linear_forgetting=10)],
                         ids=["rand", "anneal", "anneal partial", "positional", "unknown keyword"])
def test_any_other_algorithm_is_left_as_given(algo):
    assert fast_tpe.replacing(algo) is None


def test_tpe_through_partial_keeps_its_keywords():
    ours = fast_tpe.replacing(functools.partial(tpe.suggest, gamma=0.4, n_EI_candidates=5))
    assert (ours.gamma, ours.n_EI_candidates, ours.prior_weight) == (0.4, 5, 1.0)


def test_on_a_hyperopt_version_it_is_not_proven_on_hyperopts_tpe_runs(monkeypatch):
    monkeypatch.setattr(versions, "installed_version", lambda name: "0.3.1")
    assert fast_tpe.replacing(tpe.suggest) is None
    assert versions.fast_tpe_verified("0.2.7") and versions.fast_tpe_verified("0.3.0")


def test_the_conf_key_is_on_by_default():
    assert conf.FAST_TPE.default is True and conf.FAST_TPE in conf.SPARK_CONF_SETTINGS


def test_a_sparktrials_search_gets_the_same_trials_with_it_on_or_off(spark, active, monkeypatch):
    """At parallelism 1 (each trial proposed once the previous result is in) the search is
    deterministic: runtime-ml's TPE answers with it on, hyperopt's with
    spark.runtimeml.hyperopt.fastTpe false, and the trials are the same."""
    from conftest import fmin

    answered = []
    call = fast_tpe.FastTpe.__call__
    monkeypatch.setattr(fast_tpe.FastTpe, "__call__",
                        lambda self, *args: answered.append(args[0]) or call(self, *args))
    algo = functools.partial(tpe.suggest, n_startup_jobs=3)
    found = {}
    try:
        for on in (True, False):
            spark.conf.set(conf.FAST_TPE.name, str(on).lower())
            trials, _ = fmin(spark, lambda p: (p["quniform"] - 6) ** 2 + p["loguniform"],
                             EVERY_DISTRIBUTION, 8, parallelism=1, algo=algo, seed=4)
            found[on] = [doc["misc"]["vals"] for doc in trials.trials]
            found[f"answered {on}"] = len(answered)
    finally:
        spark.conf.unset(conf.FAST_TPE.name)
    assert found[True] == found[False] and len(found[True]) == 8
    assert found["answered True"] == 8 and found["answered False"] == 8  # none more when off


# ------------------------------------------------------------------ the densities, alone

def random_mixture(rng):
    components = int(rng.integers(1, 300))
    weights = rng.random(components)
    return (weights / weights.sum(), rng.normal(0, 3, components),
            rng.random(components) * 3 + 1e-3)


def test_the_whole_array_densities_and_split_are_hyperopts_bit_for_bit():
    gmm1 = tpe_densities.gmm1_lpdf(tpe.GMM1_lpdf)
    lgmm1 = tpe_densities.lgmm1_lpdf(tpe.LGMM1_lpdf)
    split = tpe_densities.split_trials(tpe.ap_split_trials, tpe.DEFAULT_LF)
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"):
        for _ in range(300):
            weights, mus, sigmas = random_mixture(rng)
            q = rng.choice([1, 0.5, 0.01, 5, 2, 3])
            low, high = ((float(-2 - 3 * rng.random()), float(2 + 3 * rng.random()))
                         if rng.random() < 0.5 else (None, None))
            size = (int(rng.integers(1, 30)),) if rng.random() < 0.8 else (3, 4)
            samples = np.round(rng.normal(0, 3, size) / q) * q
            expected = tpe.GMM1_lpdf(samples, weights, mus, sigmas, low, high, q)
            got = gmm1(samples, weights, mus, sigmas, low, high, q)
            assert np.array_equal(got, expected, equal_nan=True) and got.shape == expected.shape
            positive = np.round(np.exp(rng.normal(0, 1, size)) / q) * q
            log_mus = rng.normal(0, 1, len(mus))
            expected = tpe.LGMM1_lpdf(positive, weights, log_mus, sigmas, low, high, q)
            got = lgmm1(positive, weights, log_mus, sigmas, low, high, q)
            assert np.array_equal(got, expected, equal_nan=True) and got.shape == expected.shape

            tids = sorted(rng.choice(300, int(rng.integers(0, 200)), replace=False))
            losses = (list(rng.choice([np.inf, 1.0, 2.0, np.nan], len(tids)))
                      if rng.random() < 0.3 else list(rng.normal(size=len(tids))))
            present = [tid for tid in tids if rng.random() < 0.7]
            values = (list(rng.integers(0, 5, len(present))) if rng.random() < 0.5
                      else list(rng.normal(size=len(present))))
            gamma = float(rng.choice([0.25, 0.1, 1.0]))
            for got, expected in zip(split(present, values, tids, losses, gamma),
                                     tpe.ap_split_trials(present, values, tids, losses, gamma),
                                     strict=True):
                assert np.array_equal(got, expected) and got.dtype == expected.dtype


def test_what_the_densities_do_not_cover_goes_to_hyperopts_own():
    calls = []

    def original(*args, **kwargs):
        calls.append(kwargs.get("q"))
        return "hyperopt's"

    gmm1 = tpe_densities.gmm1_lpdf(original)
    lgmm1 = tpe_densities.lgmm1_lpdf(original)
    weights, mus, sigmas = np.array([0.5, 0.5]), np.array([0.0, 1.0]), np.array([1.0, 1.0])
    assert gmm1([0.5], weights, mus, sigmas, q=None) == "hyperopt's"  # not quantized
    assert gmm1([], weights, mus, sigmas, q=1) == "hyperopt's"  # no samples
    assert lgmm1([-3.0], weights, mus, sigmas, q=1) == "hyperopt's"  # hyperopt raises on it
    assert gmm1(["a"], weights, mus, sigmas, q=1) == "hyperopt's"  # not numbers
    assert calls == [None, 1, 1, 1]


def test_hyperopts_constants_are_the_ones_the_densities_use():
    assert tpe_densities.EPS == tpe.EPS
    assert all(hasattr(scope, name) for name in fast_tpe.RENAMED.values())
