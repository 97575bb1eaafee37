"""The store an fmin's runs go to, and whether it answers: the tracking URI executors use (a
loopback server's URI with the driver's address for other machines, a local store made absolute
or refused), a server's `/health`, and the one warning of a store that cannot be tracked into.
The decisions are pure functions; `answers` and `executor_environment` ask the server
(server_health)."""

import ipaddress
import os
import re
import socket
from typing import Dict, FrozenSet, Optional
from urllib.parse import urlparse

from runtime_ml import log, server_health
from runtime_ml.redaction import CREDENTIAL_ENV, redacted_uri

logger = log.logger()

# What the objective's own MLflow calls in a trial may cost when the server cannot be reached from
# its executor: MLflow's defaults retry one request for minutes (5-7 retries, 120 s timeouts);
# here a request gives up after about 35 s (3 tries of at most 10 s, 1 s and 2 s apart). The
# driver's own values of these variables, when set, travel instead.
TRIAL_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                     "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                     "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def executor_tracking_uri(uri, executor_hosts, local_hosts, cwd=None, driver_address=None,
                          answers=lambda uri: False, more_may_come=False):
    """The tracking URI executors should use, and a line for the log: (uri, note) when they can
    reach the store (note None when the URI travels as it is), (None, why) when they cannot.

    A server URI travels as it is, but one that names this machine's loopback (localhost,
    127.0.0.1: the usual `mlflow server` on the driver node) would send executors on other
    machines to their own loopback, where each trial spends minutes in MLflow's retries. For them
    the host becomes `driver_address` (the address Spark's executors reach the driver at) when the
    server `answers` there. A local store (sqlite, file, plain path) works only when every executor
    runs on this machine; a relative one is made absolute first. `more_may_come`: executors not
    registered yet (or added later by dynamic allocation) may run on other machines.
    """
    parsed = urlparse(uri)
    remote = sorted(host for host in executor_hosts if host not in local_hosts)
    if not is_local_store(uri):
        # executors reach a driver at a loopback address only from this machine
        elsewhere = remote or (more_may_come and not is_loopback(driver_address or ""))
        if not elsewhere or not is_loopback(parsed.hostname):
            return uri, None
        return _server_for_other_machines(uri, remote or ["executors still to come"],
                                          driver_address, answers)
    cwd = cwd or os.getcwd()
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):]
        absolute = uri if path.startswith("/") else f"sqlite:///{os.path.join(cwd, path)}"
    elif parsed.scheme == "file":
        path = parsed.path
        absolute = uri if path.startswith("/") else f"file://{os.path.join(cwd, path)}"
    else:
        absolute = uri if os.path.isabs(uri) else os.path.join(cwd, uri)
    if remote:
        return None, (
            f"the MLflow tracking URI {uri} is a local store that executors on other machines "
            f"({', '.join(remote)}) cannot reach, so mlflow.log_* inside the objective is not "
            "recorded (trial runs are still logged from the driver). Use a tracking server: "
            "mlflow.set_tracking_uri('http://<host>:5000')."
        )
    return absolute, None


def is_local_store(uri):
    """Whether MLflow keeps the runs in this machine's files: sqlite, file, or a plain path."""
    return urlparse(uri).scheme in ("", "file", "sqlite")


def is_loopback(host):
    """Whether a URI's host names the machine it is used on (localhost, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() in ("localhost", "ip6-localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _server_for_other_machines(uri, remote, driver_address, answers):
    parsed = urlparse(uri)
    shown = redacted_uri(uri)
    if driver_address and not is_loopback(driver_address):
        userinfo = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
        host = f"[{driver_address}]" if ":" in driver_address else driver_address
        port = f":{parsed.port}" if parsed.port else ""
        candidate = parsed._replace(netloc=f"{userinfo}{host}{port}").geturl()
        if answers(candidate):
            return candidate, (
                f"executors on other machines ({', '.join(remote)}) log to the MLflow server "
                f"{shown} at the driver's address: {redacted_uri(candidate)}")
        where = (f"and the server does not answer at the driver's address {driver_address} "
                 "either (it listens on loopback only: start it with `mlflow server --host "
                 "0.0.0.0`, or use the driver's address in MLFLOW_TRACKING_URI)")
    else:
        where = ("and the driver's address for them is not known (use the server's own address "
                 "in MLFLOW_TRACKING_URI)")
    return None, (
        f"the MLflow tracking URI {shown} names this machine's loopback, which executors on other "
        f"machines ({', '.join(remote)}) cannot reach, {where}; so mlflow.log_* inside the "
        "objective is not recorded (trial runs are still logged from the driver).")


def local_host_names(driver_host=None):
    names = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
    for lookup in (socket.gethostname, socket.getfqdn):
        try:
            names.add(lookup())
        except OSError:
            pass
    if driver_host:
        names.add(driver_host)
    return names


def uri_advice(uri: Optional[str]) -> str:
    """How to point MLflow at a usable store, for a warning about a URI it refused."""
    looks_like_host_port = re.fullmatch(r"[\w.-]+:\d+/?", uri or "") is not None
    server = f"http://{(uri or '').rstrip('/')}" if looks_like_host_port else "http://<host>:5000"
    return (f"Set MLFLOW_TRACKING_URI (or call mlflow.set_tracking_uri) to a tracking server such "
            f"as {server}, or a database such as sqlite:////absolute/path/mlflow.db.")


def could_not_start(uri: str, error: BaseException) -> None:
    """The one warning of an fmin whose tracking could not start: it runs untracked."""
    logger.warning("MLflow tracking to %r could not start (%s: %s); this fmin runs untracked. %s",
                   redacted_uri(uri), type(error).__name__, first_line(error), uri_advice(uri))


def answers(uri: str, resume_wanted: bool = False) -> bool:
    """Whether the store at `uri` can be tracked into: False, said in one warning, when it is a
    tracking server whose /health does not answer."""
    why = server_health.unreachable(uri)
    if why is None:
        return True
    logger.warning("MLflow tracking server %s is unreachable (%s); this fmin runs untracked%s.",
                   redacted_uri(uri), why,
                   " and starts fresh (nothing to resume from)" if resume_wanted else "")
    return False


def executor_environment(uri: str, executor_hosts: FrozenSet[str], more_may_come: bool,
                         driver_address: Optional[str]) -> Dict[str, str]:
    """What a trial's environment needs to log into its run from an executor (empty when the
    executors cannot reach the store: said in one line). `executor_hosts`, `more_may_come`: where
    the executors run, and whether more may come elsewhere (executor_tracking_uri)."""
    executor_uri, note = executor_tracking_uri(
        uri, executor_hosts, local_host_names(driver_address), driver_address=driver_address,
        answers=lambda candidate: server_health.unreachable(candidate) is None,
        more_may_come=more_may_come)
    if executor_uri is None:
        logger.warning("%s", note)
        return {}
    if note:
        logger.info("%s", note)
    environment = {"MLFLOW_TRACKING_URI": executor_uri}
    environment.update({k: os.environ[k] for k in CREDENTIAL_ENV if k in os.environ})
    environment.update({k: os.environ.get(k, v) for k, v in TRIAL_HTTP_LIMITS.items()})
    return environment


def first_line(error: object) -> str:
    return (str(error).strip().splitlines() or [""])[0]
