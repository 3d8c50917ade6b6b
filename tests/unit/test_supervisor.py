"""Pure parts of the embedded-stack supervisor, the demo and the query command."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infrastructure import supervisor
from infrastructure.settings import Settings, read_env_file
from infrastructure.times import parse_utc
from orchestration.cli.demo import LogFollower, format_summary
from processing.query import time_travel_view


def test_credentials_are_generated_once_private_and_reused(tmp_path: Path) -> None:
    plain = Settings(_env_file=None, data_dir=tmp_path)
    first = supervisor.ensure_credentials(plain)
    path = tmp_path / "credentials.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key, secret = first.s3.credentials()
    _, password = first.metrics.pushgateway_auth()
    assert read_env_file(path) == {
        "LAKEHOUSE_S3__ACCESS_KEY": key,
        "LAKEHOUSE_S3__SECRET_KEY": secret,
        "LAKEHOUSE_METRICS__PUSHGATEWAY_PASSWORD": password,
    }
    again = supervisor.ensure_credentials(plain)
    assert (again.s3.credentials(), again.metrics.pushgateway_auth()[1]) == ((key, secret), password)
    configured = Settings(
        _env_file=None,
        data_dir=tmp_path / "other",
        s3={"access_key": "a", "secret_key": "b"},
        metrics={"pushgateway_password": "c"},
    )
    assert supervisor.ensure_credentials(configured) is configured
    assert not (tmp_path / "other").exists()


def test_a_credentials_file_from_before_the_pushgateway_password_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "credentials.env"
    path.write_text("LAKEHOUSE_S3__ACCESS_KEY=old\nLAKEHOUSE_S3__SECRET_KEY=older\n")
    settings = supervisor.ensure_credentials(Settings(_env_file=None, data_dir=tmp_path))
    assert settings.s3.credentials() == ("old", "older")
    stored = read_env_file(path)
    assert stored["LAKEHOUSE_S3__ACCESS_KEY"] == "old"
    assert stored["LAKEHOUSE_METRICS__PUSHGATEWAY_PASSWORD"] == settings.metrics.pushgateway_auth()[1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_services_and_their_layout(tmp_path: Path) -> None:
    settings = supervisor.ensure_credentials(Settings(_env_file=None, data_dir=tmp_path))
    services = {s.name: s for s in supervisor.stack_services(settings)}
    assert list(services)[:2] == ["kafka", "seaweedfs"]
    for name, service in services.items():
        assert service.spec.log_file == tmp_path / "logs" / f"{name}.log"
        assert service.spec.host == "127.0.0.1"
    assert "-master.telemetry=false" in services["seaweedfs"].spec.argv
    # the master's and filer's HTTP APIs are off; every listener has its port from settings
    assert "-disableHttp" in services["seaweedfs"].spec.argv
    flags = {a.split("=")[0] for a in services["seaweedfs"].spec.argv if "port" in a}
    assert flags >= {"-s3.port", "-s3.port.grpc", "-s3.port.iceberg", "-s3.port.lance", "-master.port",
                     "-master.port.grpc", "-volume.port", "-volume.port.grpc", "-filer.port",
                     "-filer.port.grpc", "-admin.port", "-admin.port.grpc"}  # fmt: skip
    if "pushgateway" in services:
        assert (
            f"--web.config.file={tmp_path / 'config' / 'pushgateway-web.yml'}"
            in services["pushgateway"].spec.argv
        )
    if "prometheus" in services:
        argv = services["prometheus"].spec.argv
        assert f"--storage.tsdb.path={tmp_path / 'prometheus'}" in argv
        assert "--web.listen-address=127.0.0.1:9090" in argv


def test_time_travel_view_statements() -> None:
    by_id = time_travel_view("bronze.trades", 42, None)
    assert by_id[-1].endswith('lake."bronze"."trades" AT (VERSION => 42)')
    by_time = time_travel_view("bronze.trades", None, datetime(2026, 11, 22, 10, tzinfo=UTC))
    assert "AT (TIMESTAMP => TIMESTAMPTZ '2026-11-22T10:00:00+00:00')" in by_time[-1]
    assert parse_utc("2026-11-22 10:00:00") == datetime(2026, 11, 22, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"namespace\.table"):
        time_travel_view("trades", 1, None)


def test_summary_line() -> None:
    line = format_summary(123.45, 1_234_567, 2.5)
    assert "123.5" in line and "1,234,567" in line and "2.5 s" in line
    assert "n/a" in format_summary(0.0, 0, float("nan")) and "n/a" in format_summary(0.0, 0, None)


def test_the_log_follower_returns_whole_new_lines_once(tmp_path: Path) -> None:
    log = tmp_path / "ingest.log"
    follower = LogFollower(log)
    assert follower.new_lines() == []  # no log yet
    log.write_text("a run before this one\n")
    follower = LogFollower(log)  # the log is appended to across runs: only what comes after counts
    with log.open("a") as out:
        out.write("first\nsecond, half")
    assert follower.new_lines() == ["first"]
    with log.open("a") as out:
        out.write(" done\n")
    assert follower.new_lines() == ["second, half done"]
    assert follower.new_lines() == []
