"""Whether an MLflow tracking server is there: one probe of its `/health`, for the driver (may an
fmin be tracked into it?) and for an executor (may a trial's MLflow calls go to it?).

A server that answers with a client error (401, 403, 404: a proxy or an auth layer in front of
it) is there; a server error (5xx), no answer within the timeout, or no connection is not.
"""

from typing import Optional
from urllib.parse import urlparse

from runtime_ml.redaction import without_userinfo

HEALTH_TIMEOUT = 3.0  # seconds to decide a tracking server is not there


def unreachable(uri: str) -> Optional[str]:
    """For http(s) tracking URIs: None when the server answers /health, else why not (within
    HEALTH_TIMEOUT). Other URIs (local stores) are always None."""
    import urllib.error
    import urllib.request

    if urlparse(uri).scheme not in ("http", "https"):
        return None
    try:
        health = without_userinfo(uri).rstrip("/") + "/health"
        with urllib.request.urlopen(health, timeout=HEALTH_TIMEOUT) as reply:
            reply.read(64)
        return None
    except urllib.error.HTTPError as error:
        return None if error.code < 500 else f"HTTP {error.code} from {without_userinfo(uri)}"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
