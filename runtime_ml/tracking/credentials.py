"""MLflow tracking credentials at cluster start: what the init script writes, never where it shows.

`install-runtime-ml.sh` hands the tracking URI over in the environment (never on a command line)
and the credential options to `runtime-ml tracking-credentials`, which
- splits `user:password@` out of the URI: the URI is stored without it, the username and password
  become MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (the variables MLflow reads);
- reads a password or token from a file (`--tracking-password-file`, `--tracking-token-file`) or
  takes MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN from the script's environment
  (`--tracking-credentials-from-env`);
- writes them as shell exports to one file, created with mode 0600 (spark-env.sh sources it, so
  the driver gets them in its environment, and Spark's standalone worker daemons too; runtime-ml
  hands them to every trial's task from the driver's environment);
- prints the stored URI and one log line that names where each credential came from, with the URI
  shown as `https://user:***@host`. No credential goes into spark-defaults.conf, spark-env.sh, a
  Spark conf (the Spark UI's Environment page) or the log.
"""

import os
import shlex
import tempfile
from typing import Dict, Mapping, Optional, Tuple
from urllib.parse import unquote, urlparse

from runtime_ml.redaction import redacted_uri, without_userinfo

USERNAME, PASSWORD, TOKEN = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                             "MLFLOW_TRACKING_TOKEN")


class CredentialError(ValueError):
    """A credential option that cannot work; the message names the option, never the secret."""


def split_uri(uri):
    """(URI without userinfo, username or None, password or None), percent-decoded."""
    parsed = urlparse(uri)
    if "@" not in parsed.netloc:
        return uri, None, None
    userinfo = parsed.netloc.rsplit("@", 1)[0]
    user, colon, password = userinfo.partition(":")
    return without_userinfo(uri), unquote(user) or None, unquote(password) if colon else None


def _read_secret(path, option):
    try:
        with open(path) as source:
            value = source.read().strip()
    except OSError as error:
        raise CredentialError(f"{option} {path}: cannot read it ({error.strerror})") from None
    if not value:
        raise CredentialError(f"{option} {path}: the file is empty")
    if "\n" in value:
        raise CredentialError(f"{option} {path}: the file must hold one line")
    return value


def gather(uri: str, username: Optional[str] = None, password_file: Optional[str] = None,
           token_file: Optional[str] = None, from_env: bool = False,
           environ: Optional[Mapping[str, str]] = None
           ) -> Tuple[str, Dict[str, str], Dict[str, str]]:
    """(URI to store, {variable: value}, {variable: where it came from}) from the options."""
    environ = os.environ if environ is None else environ
    stored, uri_user, uri_password = split_uri(uri)
    values: dict = {}
    sources: dict = {}

    def put(name, value, source):
        if value is None:
            return
        if name in values and values[name] != value:
            raise CredentialError(f"{name} is given twice ({sources[name]} and {source}); "
                                  "give it once")
        values[name], sources[name] = value, source

    put(USERNAME, uri_user, "the URI")
    put(PASSWORD, uri_password, "the URI")
    put(USERNAME, username, "--tracking-username")
    if password_file:
        put(PASSWORD, _read_secret(password_file, "--tracking-password-file"),
            f"--tracking-password-file {password_file}")
    if token_file:
        put(TOKEN, _read_secret(token_file, "--tracking-token-file"),
            f"--tracking-token-file {token_file}")
    if from_env:
        found = [name for name in (USERNAME, PASSWORD, TOKEN) if environ.get(name)]
        if not found:
            raise CredentialError("--tracking-credentials-from-env: none of MLFLOW_TRACKING_USERNAME,"
                                  " MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN is set")
        for name in found:
            put(name, environ[name], f"the environment ({name})")
    if PASSWORD in values and USERNAME not in values:
        raise CredentialError("a tracking password needs a username: put it in the URI "
                              "(https://user@host) or pass --tracking-username USER")
    return stored, values, sources


def file_text(values: Dict[str, str]) -> str:
    lines = ["# runtime-ml: MLflow tracking credentials, written by install-runtime-ml.sh "
             "(mode 0600; sourced by spark-env.sh)."]
    lines += [f"export {name}={shlex.quote(values[name])}" for name in sorted(values)]
    return "\n".join(lines) + "\n"


def write_private(path: str, text: str, owner: Optional[str] = None) -> None:
    """Write `text` to `path` readable by its owner only, replacing it atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".runtime-ml-credentials-")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w") as out:
            out.write(text)
        if owner:
            import shutil

            shutil.chown(temporary, user=owner)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def describe(uri: str, sources: Dict[str, str], path: str) -> str:
    """The init script's log line: where each credential came from, never its value."""
    if not sources:
        return f"MLflow tracking URI {redacted_uri(uri)}; no credentials"
    parts = ", ".join(f"{name} from {source}" for name, source in sorted(sources.items()))
    return (f"MLflow tracking URI {redacted_uri(uri)}; credentials ({parts}) in {path} "
            f"(mode 0600), sourced by spark-env.sh")
