"""hyperopt's private Trials state that runtime-ml reads or writes, each guarded, with a fallback.

(SparkTrials' own private attributes are in spark_trials.py.) tests/test_compat.py fails loudly
when hyperopt moves one of them.
"""

from typing import Any, Dict, List

from runtime_ml.policy import private_name_moved


# hyperopt's Trials.new_trial_ids hands out ids from len(self._ids) on (0.2.7 and 0.3.0), so
# trials loaded with gaps in their ids (a trial that never finished) would get an id handed out
# again. Reserving every id below the highest loaded one in that private set keeps the loaded
# trials' own ids; when it moves, the loaded trials are numbered 0..n-1 instead (their runs keep
# their trial_id tags). tests/test_compat.py fails loudly when it moves.
def keep_trial_ids(trials: Any, tids: List[int]) -> List[int]:
    """The ids to give loaded trials: their own, or 0..n-1 when hyperopt's counter moved."""
    ids = trials.__dict__.get("_ids")
    if not tids:
        return []
    if not isinstance(ids, set):
        private_name_moved("hyperopt's Trials._ids", "loaded trials are numbered 0..n-1")
        return list(range(len(tids)))
    ids.update(range(max(tids) + 1))
    return list(tids)


# hyperopt's fmin loop waits until Trials.count_by_state_unsynced counts no NEW or RUNNING trial; it
# counts the documents in the private Trials._dynamic_trials (0.2.7 and 0.3.0), which hold a
# document from insert_trial_docs on, before the next refresh() puts it in the public
# `trials.trials`. The dispatcher launches and cancels exactly what hyperopt counts; when that list
# moves, the refreshed `trials.trials` is the fallback and tests/test_compat.py fails loudly.
def unsynced_trial_docs(trials: Any) -> List[dict]:
    """A copy of the list of every trial document hyperopt counts as this fmin's, refreshed or
    not (the copy is safe to walk while hyperopt's thread inserts)."""
    docs = trials.__dict__.get("_dynamic_trials")
    if not isinstance(docs, list):
        private_name_moved("hyperopt's Trials._dynamic_trials",
                           "the dispatcher sees the refreshed trials only")
        return list(trials.trials)
    exp_key = getattr(trials, "_exp_key", None)
    docs = list(docs)
    return docs if exp_key is None else [doc for doc in docs if doc.get("exp_key") == exp_key]


# hyperopt's tpe.suggest builds TPE's graph with tpe.build_posterior_wrapper(domain, prior_weight,
# gamma) -> (observed, observed_loss, posterior), on every call (0.2.7 and 0.3.0); the function is
# not documented API. runtime-ml's fast TPE builds it once per fmin and has some of its nodes
# evaluated by functions of its own, registered in pyll's scope under other names: the node's
# `name` is what pyll.rec_eval looks the function up by. When the builder moves, the caller runs
# hyperopt's tpe.suggest and tests/test_compat.py fails loudly.
def tpe_graph(domain: Any, prior_weight: float, gamma: float, renamed: Dict[str, str]) -> Any:
    """hyperopt's TPE graph for `domain`, with each node named in `renamed` evaluated by the
    function registered under its new name; None when hyperopt moved the builder."""
    from hyperopt import pyll, tpe

    build = getattr(tpe, "build_posterior_wrapper", None)
    if build is None:
        private_name_moved("hyperopt's tpe.build_posterior_wrapper", "tpe.suggest runs as shipped")
        return None
    observed, observed_loss, posterior = build(domain, prior_weight, gamma)
    posterior = pyll.as_apply(posterior)  # as pyll.rec_eval takes it
    for node in pyll.dfs(posterior):
        if node.name in renamed:
            node.name = renamed[node.name]
    return observed, observed_loss, posterior
