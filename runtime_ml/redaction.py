"""Keeping tracking credentials out of everything runtime-ml writes.

Credentials reach the executors (worker-side MLflow logging must authenticate as the driver does) but
never a log line, param, tag or artifact: every record of the "runtime_ml" logger passes through
RedactingFilter, which replaces the secret values by "***"; the hyperopt-spark lines runtime-ml's
dispatch writes go through `masked`, and what tracking writes into MLflow through `redact`; URIs
are shown without their password.
"""

import logging
import os
import sys
from typing import Iterable, List, Mapping, Optional
from urllib.parse import urlparse

# Sent to executors so worker-side logging authenticates as the driver does.
CREDENTIAL_ENV = (
    "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
)
SECRET_ENV = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")
MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


def _uri_password(uri):
    try:
        return urlparse(uri or "").password
    except ValueError:
        return None


def secret_values(environ: Optional[Mapping[str, Optional[str]]] = None,
                  uris: Iterable[Optional[str]] = ()) -> List[str]:
    """The values to mask: the secret env vars, and passwords inside tracking URIs."""
    environ = os.environ if environ is None else environ
    found = {environ.get(name) for name in SECRET_ENV}
    found.update(_uri_password(uri) for uri in (environ.get("MLFLOW_TRACKING_URI"), *uris))
    return sorted((v for v in found if v and len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def redacted_uri(uri: Optional[str]) -> Optional[str]:
    """The URI as it may be shown: 'http://user:***@host:5000' for 'http://user:pw@host:5000'."""
    parsed = urlparse(uri or "")
    if "@" not in parsed.netloc:
        return uri
    userinfo, host = parsed.netloc.rsplit("@", 1)
    user, colon, _ = userinfo.partition(":")
    return parsed._replace(netloc=f"{user}{':' + MASK if colon else ''}@{host}").geturl()


def without_userinfo(uri: str) -> str:
    """The URI with no 'user:password@' part (for requests that must not carry it in the URL)."""
    parsed = urlparse(uri)
    if "@" not in parsed.netloc:
        return uri
    return parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[1]).geturl()


def _current_tracking_uris():
    mlflow = sys.modules.get("mlflow")  # never imported here: only asked when already in use
    try:
        return (mlflow.get_tracking_uri(),) if mlflow is not None else ()
    except Exception:
        return ()


def masked(text: str) -> str:
    """`text` with every secret known here now masked (for lines written outside runtime-ml's
    logger, whose filter does the same)."""
    return redact(text, secret_values(uris=_current_tracking_uris()))


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = secret_values(uris=_current_tracking_uris())
        if not secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message, secrets), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, secrets)
        return True
