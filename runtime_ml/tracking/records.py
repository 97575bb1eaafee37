"""What runtime-ml writes into a fmin's runs, with the names Databricks Runtime ML used: a trial's
params (hp.choice values and their index), its outcome and error, the parent's space, the keys'
and values' limits, the link to the runs in a server's UI, times in MLflow's milliseconds; and
ending a trial's run without printing its link. Pure functions but for `end_run_quietly`.
"""

import datetime
import re
import time
import uuid
from typing import Any, Optional
from urllib.parse import urlparse

from runtime_ml.compat import mlflow_private
from runtime_ml.redaction import without_userinfo
from runtime_ml.tracking import resume
from runtime_ml.trial.results import is_nan_loss, plain

RUN_SOURCE = "hyperoptAutoTracking"
PRINTED_ARTIFACT = "trial_output.txt"  # what a trial printed (its end: worker.output.PRINTED_LIMIT)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # MLflow 3's label for machine learning
MAX_TAG_VALUE = resume.TAG_LIMIT  # MLflow's limits (mlflow.utils.validation) in 2.9
MAX_PARAM_VALUE = 6000
MAX_KEY = 250


def fmin_uuid() -> str:
    return uuid.uuid4().hex[:6]


def flatten_params(value, prefix=""):
    """A space_eval result as {'a.b': leaf}: dicts by key, lists and tuples by position."""
    value = plain(value)
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(flatten_params(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, (list, tuple)) and prefix:
        flat = {}
        for index, item in enumerate(value):
            flat.update(flatten_params(item, f"{prefix}.{index}"))
        return flat
    return {prefix or "value": value}


def param_key(name):
    """MLflow accepts alphanumerics, _ - . space : / in keys, up to 250 characters."""
    return re.sub(r"[^\w\-. :/]", "_", str(name))[:MAX_KEY]


def param_text(value, limit=MAX_PARAM_VALUE):
    text = str(plain(value))
    return text if len(text) <= limit else text[: limit - 14] + "...(truncated)"


def choice_labels(space):
    """Labels of the hp.choice parameters in a space (their raw value is an index)."""
    from hyperopt import pyll

    labels = set()
    for node in pyll.toposort(pyll.as_apply(space)):
        if node.name == "switch":
            selector = node.pos_args[0]
            if selector.name == "hyperopt_param":
                labels.add(selector.arg["label"].obj)
    return labels


def trial_params(space, vals, choices):
    """The trial's hyperparameters as values, with the hp.choice index kept as `<label>_index`.

    `vals` is the trial's misc['vals'] ({label: [value]} or [] for inactive branches).
    """
    from hyperopt import space_eval

    active = {label: values[0] for label, values in vals.items() if len(values)}
    evaluated = space_eval(space, active)
    flat = flatten_params(evaluated)
    if list(flat) == ["value"] and len(active) == 1:  # a bare hp.uniform('x', ...) space
        flat = {next(iter(active)): flat["value"]}
    params = {param_key(name): param_text(value) for name, value in flat.items()}
    for label in sorted(choices & set(active)):
        params[param_key(f"{label}_index")] = param_text(int(active[label]))
    return params


def space_text(space, limit=MAX_TAG_VALUE):
    from hyperopt import pyll

    text = str(pyll.as_apply(space))
    return text if len(text) <= limit else text[: limit - 14] + "...(truncated)"


RUN_STATUS_OF_OUTCOME = {"success": "FINISHED", "failure": "FAILED", "cancelled": "KILLED"}
NAN_LOSS_MESSAGE = ("the objective returned loss=nan; hyperopt ignores this trial when it picks the "
                    "best. Return a finite loss, or {'status': STATUS_FAIL} for a failed evaluation.")


def trial_outcome(trial):
    """'success', 'failure' or 'cancelled': what the trial's child run reports (tag trial_status)."""
    from hyperopt import STATUS_OK, base

    state = trial["state"]
    if state == base.JOB_STATE_CANCEL:
        return "cancelled"
    result = trial.get("result") or {}
    if (state == base.JOB_STATE_DONE and result.get("status") == STATUS_OK
            and not is_nan_loss(result)):
        return "success"
    return "failure"


def error_summary(error_tuple: Any) -> Any:
    """hyperopt's (str(type(e)), traceback) -> ('ValueError', 'ValueError: bad x')."""
    type_text, detail = error_tuple
    match = re.match(r"<class '([^']+)'>", type_text or "")
    name = match.group(1).rsplit(".", 1)[-1] if match else (type_text or "Error")
    lines = [line for line in str(detail or "").strip().splitlines() if line.strip()]
    return name, (lines[-1].strip() if lines else name)[:MAX_TAG_VALUE]



def runs_view_link(uri: str, experiment_id: str, genai_ui: bool) -> Optional[str]:
    """The experiment's runs in the tracking server's UI, or None for a local store. MLflow 3's UI
    opens an experiment in its GenAI view unless the link asks for the machine-learning workflow
    (seen in Chromium on MLflow 3.17.2, with or without the experiment's kind tag)."""
    if urlparse(uri).scheme not in ("http", "https"):
        return None
    link = f"{without_userinfo(uri).rstrip('/')}/#/experiments/{experiment_id}"
    return link + "?workflowType=machine_learning" if genai_ui else link


def ms(seconds=None):
    return int((time.time() if seconds is None else seconds) * 1000)


def doc_ms(value, default):
    """A trial document's time (hyperopt's naive UTC datetime) in ms, or `default`."""
    if not isinstance(value, datetime.datetime):
        return default
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return ms(value.timestamp())



def end_run_quietly(client, run_id, status, ended=None):
    """End a trial's run without printing its link (the parent's end still prints its own)."""
    from mlflow.entities import RunStatus

    update = mlflow_private.quiet_run_update(client)
    if update is None:
        client.set_terminated(run_id, status, end_time=ended)
    else:
        update(run_id, run_status=RunStatus.from_string(status),
               end_time=ms() if ended is None else ended, run_name=None)

