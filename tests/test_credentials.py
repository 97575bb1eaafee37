"""The credential half of cluster start (runtime_ml.tracking.credentials): what goes where, and what is
refused. The init script around it is tested end to end in test_cluster_start.py."""

import os
import subprocess

import pytest

from runtime_ml.redaction import redacted_uri
from runtime_ml.tracking import credentials
from runtime_ml.tracking.credentials import CredentialError


def test_user_and_password_are_split_out_of_the_uri_and_decoded():
    assert credentials.split_uri("https://me%40corp:p%40ss%3Aw@mlflow.internal:443/x?y=1") == \
        ("https://mlflow.internal:443/x?y=1", "me@corp", "p@ss:w")
    assert credentials.split_uri("https://me@host") == ("https://host", "me", None)
    assert credentials.split_uri("http://host:5000") == ("http://host:5000", None, None)


def test_a_shown_uri_masks_the_password_only():
    assert redacted_uri("https://user:host@host") == "https://user:***@host"
    assert redacted_uri("https://user@host") == "https://user@host"
    assert redacted_uri("databricks") == "databricks"


def test_each_credential_comes_from_one_place_and_a_password_needs_a_user(tmp_path):
    password = tmp_path / "password"
    password.write_text("pw-from-file\n")
    stored, values, sources = credentials.gather(
        "https://me:pw@host", token_file=None, environ={})
    assert (stored, values) == ("https://host", {"MLFLOW_TRACKING_USERNAME": "me",
                                                 "MLFLOW_TRACKING_PASSWORD": "pw"})
    assert sources == {"MLFLOW_TRACKING_USERNAME": "the URI", "MLFLOW_TRACKING_PASSWORD": "the URI"}
    with pytest.raises(CredentialError, match=r"MLFLOW_TRACKING_PASSWORD is given twice \(the URI "
                                              r"and --tracking-password-file .*\); give it once"):
        credentials.gather("https://me:pw@host", password_file=str(password), environ={})
    with pytest.raises(CredentialError, match="a tracking password needs a username"):
        credentials.gather("https://host", password_file=str(password), environ={})
    with pytest.raises(CredentialError, match="none of MLFLOW_TRACKING_USERNAME"):
        credentials.gather("https://host", from_env=True, environ={})
    for text, problem in (("", "the file is empty"),
                          ("SEKRIT-1\nSEKRIT-2\n", "the file must hold one line")):
        password.write_text(text)
        with pytest.raises(CredentialError, match=problem) as raised:
            credentials.gather("https://me@host", password_file=str(password), environ={})
        assert "SEKRIT" not in str(raised.value)  # never the content
    with pytest.raises(CredentialError, match="cannot read it"):
        credentials.gather("https://host", token_file=str(tmp_path / "missing"), environ={})


def test_the_file_is_private_and_a_shell_reads_back_every_value(tmp_path):
    path = tmp_path / "credentials.sh"
    path.write_text("old\n")
    path.chmod(0o644)
    values = {"MLFLOW_TRACKING_USERNAME": "me", "MLFLOW_TRACKING_PASSWORD": "it's $HOME `x` \"q\""}
    credentials.write_private(str(path), credentials.file_text(values))
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.sh"]
    shown = subprocess.run(["bash", "-c", f". {path}; printf '%s\\0%s' \"$MLFLOW_TRACKING_USERNAME\""
                            " \"$MLFLOW_TRACKING_PASSWORD\""], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "HOME": "/nowhere"})
    assert shown.stdout.split("\0") == ["me", values["MLFLOW_TRACKING_PASSWORD"]]


def test_the_log_line_names_sources_never_values():
    line = credentials.describe("https://me:pw-123@host", {"MLFLOW_TRACKING_PASSWORD": "the URI"},
                                "/conf/c.sh")
    assert "pw-123" not in line and "https://me:***@host" in line
    assert "MLFLOW_TRACKING_PASSWORD from the URI" in line and "/conf/c.sh (mode 0600)" in line
