"""hyperopt's tpe.suggest, with the same proposals at a cost that does not grow with the search in
Python.

hyperopt's tpe.suggest, at each call: builds TPE's graph (pyll) for the space; walks every trial
for its best loss; rebuilds every trial's parameter values (base.miscs_to_idxs_vals); evaluates
the graph, in which each parameter's observations are split below / above the loss quantile
(ap_split_trials, a Python walk over every trial) and each quantized parameter's candidates are
scored with a Python loop over every mixture component, one per trial (GMM1_lpdf, LGMM1_lpdf).
At 2,000 trials with quantized parameters that is about a tenth of a second per proposal.

`FastTpe` takes the same steps in the same order, on hyperopt's own graph and functions and with
the same random generator, so its proposals are hyperopt's bit for bit (tests/test_fast_tpe.py,
on random histories, both hyperopt pins), but:
- the graph is built once per fmin, and its split and quantized-density nodes are evaluated by
  tpe_densities' whole-array versions of hyperopt's functions;
- each trial's parameter values are read once, when TPE is first shown the trial (a trial's values
  are set when it is proposed and never change), and kept in order for the next calls.

`replacing(algo)` gives a FastTpe for hyperopt's tpe.suggest (also through functools.partial with
its keyword arguments) on a hyperopt version it was proven on, and None for anything else, which
then runs as the user passed it. Spark conf spark.runtimeml.hyperopt.fastTpe false turns it off.
"""

import functools
import inspect
import logging
import math
import operator
import threading
import time
from typing import Any, Dict, List

import numpy as np
from hyperopt import base, pyll, rand, tpe
from hyperopt.pyll import scope

from runtime_ml.compat import hyperopt_private, versions
from runtime_ml.driver import tpe_densities

# hyperopt's own logger for TPE: its "build_posterior_wrapper took" and "TPE using" lines
hyperopt_logger = logging.getLogger("hyperopt.tpe")
KEYWORDS = ("prior_weight", "n_startup_jobs", "n_EI_candidates", "gamma", "verbose")

# The graph's nodes evaluated by runtime-ml: hyperopt's name -> the name registered for ours.
RENAMED = {"GMM1_lpdf": "runtime_ml_GMM1_lpdf", "LGMM1_lpdf": "runtime_ml_LGMM1_lpdf",
           "ap_split_trials": "runtime_ml_ap_split_trials"}
_registered = threading.Lock()


def _register():
    """Put the whole-array functions in hyperopt's pyll scope under their own names (once per
    process; hyperopt's own are left as they are)."""
    with _registered:
        if all(hasattr(scope, name) for name in RENAMED.values()):
            return
        made = {
            "GMM1_lpdf": tpe_densities.gmm1_lpdf(tpe.GMM1_lpdf),
            "LGMM1_lpdf": tpe_densities.lgmm1_lpdf(tpe.LGMM1_lpdf),
            "ap_split_trials": tpe_densities.split_trials(tpe.ap_split_trials, tpe.DEFAULT_LF),
        }
        for name, function in made.items():
            function.__name__ = RENAMED[name]
            scope.define_if_new(function)


def defaults():
    """tpe.suggest's keyword arguments and their defaults, from its signature."""
    parameters = inspect.signature(tpe.suggest).parameters
    return {name: parameters[name].default for name in KEYWORDS}


def replacing(algo):
    """A FastTpe for `algo` when it is hyperopt's tpe.suggest (or a functools.partial of it with
    keyword arguments only) on a hyperopt version FastTpe is proven on; else None."""
    keywords = {}
    if isinstance(algo, functools.partial):
        if algo.args or set(algo.keywords) - set(KEYWORDS):
            return None
        keywords, algo = dict(algo.keywords), algo.func
    if algo is not tpe.suggest or not versions.fast_tpe_verified(
            versions.installed_version("hyperopt")):
        return None
    _register()
    return FastTpe(**{**defaults(), **keywords})


class ShownLosses:
    """Each shown trial document's id (misc["from_tid"] for a copy of another trial) and loss as
    hyperopt's tpe.suggest reads them (no loss yet, as a new, running or failed trial: infinite),
    kept between calls for the start of the list whose trials were DONE when read: a finished
    trial's loss does not change, and hyperopt's refreshed list keeps a DONE document in place.
    When the documents read before are not the start of the list any more, all are read again."""

    def __init__(self):
        self._forget()

    def _forget(self):
        self._docs: List[dict] = []
        self._tids: List[Any] = []
        self._losses: List[float] = []

    def of(self, shown):
        kept = len(self._docs)
        if len(shown) < kept or not all(map(operator.is_, self._docs, shown[:kept])):
            self._forget()
            kept = 0
        tail = shown[kept:]
        # States before losses: a trial is DONE only once its result is written
        # (trial_docs.write_result), so one seen DONE here has its loss read below.
        done = 0
        while done < len(tail) and tail[done]["state"] == base.JOB_STATE_DONE:
            done += 1
        inf = float("inf")
        tids = self._tids + [doc["misc"].get("from_tid", doc["tid"]) for doc in tail]
        losses = self._losses + [inf if loss is None else float(loss)
                                 for loss in [doc["result"].get("loss") for doc in tail]]
        self._docs += tail[:done]
        self._tids = tids[:kept + done]
        self._losses = losses[:kept + done]
        return tids, losses


def best_documents(shown, shown_losses):
    """(tids, documents, losses) as hyperopt's tpe.suggest makes them: each trial id's document
    with the lowest loss (no loss yet, as new, running and failed trials, is infinite), by id.
    A document that is a copy of another (misc["from_tid"]) counts for that one; a trial whose
    loss is NaN is left out. `shown_losses`: the ShownLosses of earlier calls."""
    tids, losses = shown_losses.of(shown)
    if all(map(operator.lt, tids, tids[1:])) and not any(map(math.isnan, losses)):
        return tuple(tids), tuple(shown), losses  # one document per id, in order: the usual case
    # hyperopt's rule, whose `loss <= best` also leaves out a trial whose loss is NaN
    best_docs: Dict[Any, dict] = {}
    best_losses: Dict[Any, float] = {}
    for tid, doc, loss in zip(tids, shown, losses, strict=True):
        best_losses.setdefault(tid, loss)
        if loss <= best_losses[tid]:
            best_losses[tid] = loss
            best_docs[tid] = doc
    in_order = sorted(best_docs.items())  # oldest first, as TPE's linear forgetting expects
    if not in_order:
        return (), (), []
    return (tuple(tid for tid, _ in in_order), tuple(doc for _, doc in in_order),
            [best_losses[tid] for tid, _ in in_order])


class ObservedValues:
    """Each parameter's (trial ids, values) over the trial documents TPE is shown, in their order,
    as hyperopt's base.miscs_to_idxs_vals gives them; kept between calls. A call reads only the
    documents after those it has read before (hyperopt's own function reads them, with its
    checks); when those are not the start of the new list (a document replaced or removed), it
    reads them all again.

    The graph reads them only in its split (ap_split_trials), which makes arrays of them: they are
    kept as arrays too, grown by the new documents' (numbers only: the same array as one made of
    the whole list), and handed as arrays; as lists when a parameter's values are not numbers."""

    def __init__(self, keys):
        self.keys = keys
        self._forget()

    def _forget(self):
        self._miscs: List[dict] = []
        self._idxs: Dict[str, list] = {key: [] for key in self.keys}
        self._vals: Dict[str, list] = {key: [] for key in self.keys}
        self._arrays: Dict[str, Any] = {key: None for key in self.keys}  # False: not numbers

    def _grow(self, key, idxs, vals):
        kept = self._arrays[key]
        if not idxs or kept is False:
            return
        added = np.asarray(idxs), np.asarray(vals)
        if not tpe_densities.number_vectors(*added):
            self._arrays[key] = False
        elif kept is None:
            self._arrays[key] = added
        else:
            self._arrays[key] = tuple(np.concatenate([old, new])
                                      for old, new in zip(kept, added, strict=True))

    def of(self, miscs):
        seen = len(self._miscs)
        if len(miscs) < seen or not all(map(operator.is_, self._miscs, miscs[:seen])):
            self._forget()
            seen = 0
        if len(miscs) > seen:
            idxs, vals = base.miscs_to_idxs_vals(miscs[seen:], keys=self.keys)
            for key in self.keys:
                self._idxs[key].extend(idxs[key])
                self._vals[key].extend(vals[key])
                self._grow(key, idxs[key], vals[key])
            self._miscs.extend(miscs[seen:])
        arrays = {key: kept for key, kept in self._arrays.items() if kept}
        return ({key: arrays[key][0] if key in arrays else ids for key, ids in self._idxs.items()},
                {key: arrays[key][1] if key in arrays else values
                 for key, values in self._vals.items()})


class FastTpe:
    """tpe.suggest(new_ids, domain, trials, seed, **keywords) for one fmin (it keeps that fmin's
    graph and observed values)."""

    def __init__(self, prior_weight, n_startup_jobs, n_EI_candidates, gamma, verbose):
        self.prior_weight = prior_weight
        self.n_startup_jobs = n_startup_jobs
        self.n_EI_candidates = n_EI_candidates
        self.gamma = gamma
        self.verbose = verbose
        self._domain = None
        self._graph = None
        self._observed = ObservedValues([])
        self._shown_losses = ShownLosses()

    def _graph_for(self, domain):
        """The fmin's graph, built on its first call; None when hyperopt moved its builder."""
        if domain is not self._domain:
            self._graph = hyperopt_private.tpe_graph(domain, self.prior_weight, self.gamma, RENAMED)
            self._observed = ObservedValues(list(domain.params.keys()))
            self._domain = domain
        return self._graph

    def __call__(self, new_ids, domain, trials, seed):
        started = time.time()
        graph = self._graph_for(domain)
        if graph is None:
            return tpe.suggest(new_ids, domain, trials, seed, prior_weight=self.prior_weight,
                               n_startup_jobs=self.n_startup_jobs,
                               n_EI_candidates=self.n_EI_candidates, gamma=self.gamma,
                               verbose=self.verbose)
        observed, observed_loss, posterior = graph
        if self.verbose:
            hyperopt_logger.info("build_posterior_wrapper took %f seconds" % (time.time() - started))

        tids, docs, losses = best_documents(trials.trials, self._shown_losses)
        if self.verbose:
            shown = ("%i/%i trials with best loss %f" % (len(docs), len(trials), np.nanmin(losses))
                     if docs else "0 trials")
            hyperopt_logger.info("TPE using %s" % shown)

        if len(docs) < self.n_startup_jobs:
            return rand.suggest(new_ids, domain, trials, seed)

        first_new_id = new_ids[0]
        if tids:
            fake_id_0 = max(max(tids), first_new_id) + 2
        else:
            assert self.n_startup_jobs <= 0
            fake_id_0 = first_new_id + 2
        fake_ids = list(range(fake_id_0, fake_id_0 + self.n_EI_candidates))
        idxs_of, vals_of = self._observed.of([doc["misc"] for doc in docs])
        # The graph reads the observations and losses only in its split (ap_split_trials, which
        # makes arrays of them): as arrays, once, they are the same to it.
        memo = {domain.s_new_ids: fake_ids, domain.s_rng: np.random.default_rng(seed),
                observed_loss["idxs"]: np.asarray(tids), observed_loss["vals"]: np.asarray(losses),
                observed["idxs"]: idxs_of, observed["vals"]: vals_of}
        idxs, vals = pyll.rec_eval(posterior, memo=memo, print_node_on_error=False)

        for label, param in domain.params.items():  # hyperopt's offset for randint(low, high)
            if param.name == "randint" and len(param.pos_args) == 2:
                offset = param.pos_args[0].obj
                vals[label] = [val + offset for val in vals[label]]

        miscs = [{"tid": first_new_id, "cmd": domain.cmd, "workdir": domain.workdir}]
        base.miscs_update_idxs_vals(miscs, idxs, vals, idxs_map={fake_ids[0]: first_new_id},
                                    assert_all_vals_used=False)
        return trials.new_trial_docs([first_new_id], [None], [domain.new_result()], miscs)
