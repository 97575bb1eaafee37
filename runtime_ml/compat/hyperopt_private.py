"""hyperopt's private Trials state that runtime-ml reads or writes, each guarded, with a fallback.

(SparkTrials' own private attributes are in spark_trials.py.) tests/test_compat.py fails loudly
when hyperopt moves one of them.
"""

import threading
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


# hyperopt's Trials.refresh() and count_by_state_unsynced() walk every trial document in the private
# Trials._dynamic_trials on every call (refresh also keeps the valid ones in Trials._trials and
# their ids in Trials._ids; 0.2.7 and 0.3.0), and hyperopt's fmin loop calls them several times
# at each look, so a look costs more as the search grows. SettledTrials gives the same answers
# walking only the documents after the oldest one that can still change state. When those private
# names move, hyperopt's own methods stay and tests/test_compat.py fails loudly.
class SettledTrials:
    """refresh() and count_by_state_unsynced() for a Trials without an exp_key, as hyperopt's.

    A trial in JOB_STATE_DONE or JOB_STATE_ERROR never changes state again (hyperopt's states
    only move forward; runtime-ml writes a result that arrives after a cancellation over
    JOB_STATE_CANCEL, so a cancelled trial is not settled). Counts by state and the valid
    documents of the settled start of the list are kept; the rest is walked at each call."""

    def __init__(self, trials: Any) -> None:
        self.trials = trials
        self._lock = threading.Lock()  # hyperopt's loop and a user's early_stop_fn both count
        self._docs: Any = None
        self._settled = 0
        self._counts: Dict[int, int] = {}
        self._valid: List[dict] = []

    @classmethod
    def of(cls, trials: Any) -> Any:
        """A SettledTrials for `trials`, or None (its own methods then) when its refresh or
        count_by_state_unsynced are not hyperopt's Trials' (a subclass's, or a function set on the
        instance), or its private state is not where hyperopt 0.2.7 and 0.3.0 keep it."""
        from hyperopt import base

        state = trials.__dict__
        for name in ("refresh", "count_by_state_unsynced"):
            if name in state or getattr(type(trials), name, None) is not getattr(base.Trials, name):
                return None
        if not (isinstance(state.get("_dynamic_trials"), list) and "_trials" in state
                and isinstance(state.get("_ids"), set) and "_exp_key" in state):
            private_name_moved("hyperopt's Trials._dynamic_trials, _trials, _ids or _exp_key",
                               "hyperopt's loop walks every trial at each look")
            return None
        return cls(trials) if state["_exp_key"] is None else None

    def _tail(self) -> List[dict]:
        """The documents after the settled start, once that start is moved past the newly
        settled ones (all again when hyperopt replaced or shortened its list)."""
        from hyperopt import base

        docs = self.trials._dynamic_trials
        if docs is not self._docs or len(docs) < self._settled:
            self._docs, self._settled, self._counts, self._valid = docs, 0, {}, []
        final = (base.JOB_STATE_DONE, base.JOB_STATE_ERROR)
        while self._settled < len(docs) and docs[self._settled]["state"] in final:
            doc = docs[self._settled]
            self._counts[doc["state"]] = self._counts.get(doc["state"], 0) + 1
            if doc["state"] in base.JOB_VALID_STATES:
                self._valid.append(doc)
                self.trials._ids.add(doc["tid"])
            self._settled += 1
        return docs[self._settled:]

    def refresh(self) -> None:
        from hyperopt import base

        with self._lock:
            tail = [doc for doc in self._tail() if doc["state"] in base.JOB_VALID_STATES]
            self.trials._trials = self._valid + tail
        self.trials._ids.update([doc["tid"] for doc in tail])

    def count_by_state_unsynced(self, arg: Any) -> int:
        from hyperopt import base

        if arg in base.JOB_STATES:
            states = {arg}
        elif hasattr(arg, "__iter__"):
            states = set(arg)
            assert all(x in base.JOB_STATES for x in states)
        else:
            raise TypeError(arg)
        with self._lock:  # the settled counts and the rest of the list of one moment
            tail = self._tail()
            settled = sum(self._counts.get(state, 0) for state in states)
        return settled + sum(1 for doc in tail if doc["state"] in states)
