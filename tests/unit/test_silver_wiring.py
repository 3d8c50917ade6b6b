"""Silver's wiring without services: Spark catalog properties, the settings hand-off to
spark-submit, the job's result line, and the result's accounting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infrastructure.settings import Settings, to_environment
from processing.silver.result import RESULT_PREFIX, SilverResult, SilverTables
from processing.silver.spark_submit import JOB, parse_result, submit_command
from processing.spark_session import ICEBERG_CATALOG_CLASS, spark_conf
from tests.fixtures.lakehouse import W1

SETTINGS = Settings(
    _env_file=None,
    products=["BTC-USD", "ETH-USD"],
    s3={"endpoint": "http://seaweedfs:8333", "access_key": "AK", "secret_key": "SK"},
    catalog={"name": "lakehouse", "uri": "http://nessie:19120/iceberg", "credential": "id:csecret"},
    silver={"max_event_age_s": 7},
)


def test_spark_catalog_comes_from_settings_and_secrets_are_redacted() -> None:
    conf = spark_conf(SETTINGS)
    assert conf["spark.sql.catalog.lakehouse"] == ICEBERG_CATALOG_CLASS
    assert conf["spark.sql.catalog.lakehouse.uri"] == "http://nessie:19120/iceberg"
    assert conf["spark.sql.catalog.lakehouse.s3.endpoint"] == "http://seaweedfs:8333"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    redact = re.compile(conf["spark.redaction.regex"])
    for name, value in conf.items():
        if value in ("AK", "SK", "id:csecret"):
            assert redact.search(name), f"{name} would show its secret in the Spark UI"


def test_settings_survive_the_trip_to_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    env = to_environment(SETTINGS)
    assert env["LAKEHOUSE_SILVER__MAX_EVENT_AGE_S"] == "7"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None) == SETTINGS


def test_the_job_is_submitted_with_the_window_and_tables() -> None:
    command = submit_command("spark-submit", W1, SilverTables("a.b", "a.s", "a.r"))
    assert command[:2] == ["spark-submit", str(JOB)] and Path(JOB).is_file()
    assert command[command.index("--start") + 1] == "2026-01-01T10:00:00+00:00"
    assert command[command.index("--silver") + 1] == "a.s"


def test_the_result_line_round_trips() -> None:
    result = SilverResult.from_counts(
        "spark",
        W1,
        valid_rows=10,
        keys=7,
        rejected=2,
        rejected_new=2,
        changed=5,
        replaced=1,
        duration_s=1.5,
        commit_s=0.5,
    )
    assert (result.bronze_rows, result.duplicates, result.inserted, result.unchanged) == (12, 3, 4, 2)
    assert result.bronze_rows == (
        result.rejected + result.duplicates + result.inserted + result.replaced + result.unchanged
    )
    stdout = f"some log line\n{RESULT_PREFIX}{result.to_json()}\n"
    assert parse_result(stdout) == result
    with pytest.raises(RuntimeError, match="no result line"):
        parse_result("only logs\n")
