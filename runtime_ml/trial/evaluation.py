"""hyperopt's `Domain.evaluate`, split so that the executor only calls the objective.

Stock SparkTrials ships the search space to the executor and runs `Domain.evaluate` there, which
makes every Python worker import hyperopt (numpy, scipy, networkx). runtime-ml does hyperopt's two
halves on the driver, in the same steps and with the same exceptions:
- before the trial, `space_values`: the values the objective is called with, from the trial's
  config (the pyll evaluation `Domain.evaluate` does before calling the objective);
- after it, `hyperopt_result`: the objective's return value as hyperopt's result dict (a number is
  the loss; a dict needs a known `status` and, for STATUS_OK, a loss that converts to float;
  `attachments` stay in the dict, as with `attach_attachments=False`).
The executor, in between, calls the objective and applies `dict()` to what is not a number
(`worker.task.shipped_output`), as `Domain.evaluate` does, so an unpicklable mapping still travels.

`tests/test_hyperopt_contract.py` pins the equivalence with `Domain.evaluate` on both supported
hyperopt versions. `call_objective` is the whole first half, for the two cases that must run on the
executor: an objective that asks for `expr, memo, ctrl` (`fmin_pass_expr_memo_ctrl`), and parameter
values that cannot be pickled.
"""

from typing import Any

import numpy as np
from hyperopt import STATUS_OK, STATUS_STRINGS, pyll
from hyperopt.base import Ctrl, InvalidLoss, InvalidResultStatus, use_obj_for_literal_in_memo


def _memo(domain, config):
    memo = domain.memo_from_config(config)
    use_obj_for_literal_in_memo(domain.expr, None, Ctrl, memo)  # SparkTrials passes ctrl=None
    return memo


def space_values(domain: Any, config: dict) -> Any:
    """What `Domain.evaluate(config, ctrl=None)` passes to the objective."""
    return pyll.rec_eval(domain.expr, memo=_memo(domain, config),
                         print_node_on_error=domain.rec_eval_print_node_on_error)


def call_objective(domain: Any, config: dict) -> Any:
    """The objective's return value for `config`, called as `Domain.evaluate` calls it."""
    if domain.pass_expr_memo_ctrl:
        return domain.fn(expr=domain.expr, memo=_memo(domain, config), ctrl=None)
    return domain.fn(space_values(domain, config))


def hyperopt_result(value: Any) -> dict:
    """The objective's return value as hyperopt's result dict, or hyperopt's exception for it."""
    if isinstance(value, (float, int, np.number)):
        return {"loss": float(value), "status": STATUS_OK}
    result = dict(value)
    status = result["status"]
    if status not in STATUS_STRINGS:
        raise InvalidResultStatus(result)
    if status == STATUS_OK:
        try:
            result["loss"] = float(result["loss"])
        except (TypeError, KeyError):
            raise InvalidLoss(result)  # noqa: B904 (hyperopt raises it unchained)
    return result
