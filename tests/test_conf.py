"""Conf keys: parsing of values and reading the tracking flag from a live session."""

import logging

import pytest

from runtime_ml import conf

KEY = conf.TRACK_HYPEROPT.name


@pytest.mark.parametrize(
    "raw, expected",
    [
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        ("False", False),
        (" false ", False),
        ("yes", None),
        ("0", None),
        ("", None),
        (None, None),
        (1, None),
    ],
)
def test_spark_bool_accepts_only_spark_booleans(raw, expected):
    assert conf.parse_spark_bool(raw) is expected


@pytest.mark.parametrize(
    "raw, expected",
    [(None, False), ("", False), ("0", False), ("false", False), ("1", True), ("TRUE", True),
     ("yes", True), ("on", True)],
)
def test_env_switches(raw, expected):
    environ = {} if raw is None else {conf.DISABLED.name: raw, conf.STRICT.name: raw}
    assert conf.runtime_disabled(environ) is expected
    assert conf.strict_mode(environ) is expected


def test_every_setting_has_a_default_and_a_description():
    for setting in conf.SPARK_CONF_SETTINGS + (conf.DISABLED, conf.STRICT):
        assert setting.description.strip()
        assert setting.default is not None


def test_no_session_means_defaults():
    reading = conf.read_spark_flag(conf.TRACK_HYPEROPT, None)
    assert (reading.value, reading.source) == (True, "default")


@pytest.mark.parametrize(
    "value, expected",
    [(False, False), (True, True), ("false", False), ("FALSE", False), ("True", True)],
)
def test_tracking_flag_read_from_session_as_users_set_it(spark, value, expected):
    spark.conf.set(KEY, value)
    try:
        reading = conf.read_spark_flag(conf.TRACK_HYPEROPT, spark)
    finally:
        spark.conf.unset(KEY)
    assert (reading.value, reading.source) == (expected, "spark conf")


def test_unset_flag_is_on_by_default(spark):
    spark.conf.unset(KEY)
    reading = conf.read_spark_flag(conf.TRACK_HYPEROPT, spark)
    assert (reading.value, reading.source) == (True, "default")


def test_bad_flag_value_warns_once_naming_key_value_and_default(spark, caplog):
    caplog.set_level(logging.WARNING, logger="runtime_ml")
    spark.conf.set(KEY, "yes")
    try:
        reading = conf.read_spark_flag(conf.TRACK_HYPEROPT, spark)
    finally:
        spark.conf.unset(KEY)
    assert reading.value is True and reading.raw == "yes"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert KEY in warnings[0] and "'yes'" in warnings[0] and "default true" in warnings[0]


def test_shipped_spark_defaults_match_the_conf_module():
    """conf/spark-defaults.conf is what `runtime-ml spark-defaults` prints (one source: conf.py)."""
    from pathlib import Path

    shipped = Path(__file__).resolve().parent.parent / "conf" / "spark-defaults.conf"
    assert shipped.read_text() == conf.spark_defaults_text()
    assert f"{KEY} true" in shipped.read_text()
