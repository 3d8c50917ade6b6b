"""The CLI's error boundary as a person meets it: each class of failure is ONE line naming what
failed, where, and the command that fixes it, exit code 1; usage errors exit 2; no tracebacks.
"Service down" is a closed free port on 127.0.0.1. Commands run as subprocesses, like a user's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest
import zstandard

from infrastructure import services
from infrastructure.settings import ENV_PREFIX

DOWN = {  # nothing listens on these
    name: f"127.0.0.1:{services.free_port()}" for name in ("catalog", "s3", "kafka", "pushgateway")
}


def run(args: list[str], tmp_path: Path, **env: str | None) -> subprocess.CompletedProcess:
    """``lakehouse ARGS`` with every service on a closed port; ``env`` overrides (None: unset)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    base |= {
        "LAKEHOUSE_DATA_DIR": str(tmp_path / "data"),
        "LAKEHOUSE_S3__ACCESS_KEY": "key",
        "LAKEHOUSE_S3__SECRET_KEY": "secret",
        "LAKEHOUSE_CATALOG__URI": f"http://{DOWN['catalog']}",
        "LAKEHOUSE_S3__ENDPOINT": f"http://{DOWN['s3']}",
        "LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS": DOWN["kafka"],
        "LAKEHOUSE_METRICS__PUSHGATEWAY_URL": f"http://{DOWN['pushgateway']}",
        "LAKEHOUSE_STACK__AIRFLOW_PORT": str(services.free_port()),
    }
    base |= {k: v for k, v in env.items() if v is not None}
    for name in [k for k, v in env.items() if v is None]:
        base.pop(name, None)
    return subprocess.run([services.venv_bin("lakehouse"), *args], cwd=tmp_path, env=base,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def first_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[0]


def assert_one_line(result: subprocess.CompletedProcess, line: str, code: int = 1) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert first_line(result) == line, result.stderr
    assert "Traceback" not in result.stderr and "%3|" not in result.stderr, result.stderr


@pytest.mark.parametrize("args", [["query", "SELECT 1"], ["snapshots", "bronze.trades"], ["gold"]])
def test_catalog_down(args: list[str], tmp_path: Path) -> None:
    result = run(args, tmp_path)
    line = f"error: catalog at http://{DOWN['catalog']} is not reachable: start the stack with `lakehouse up`"
    # gold first says its metrics could not be pushed (a warning), then the error
    assert result.returncode == 1 and line in result.stderr.splitlines(), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["init"],
        ["backfill", "--product", "BTC-USD", "--start", "2026-01-01T00:00", "--end", "2026-01-01T01:00"],
    ],
)
def test_broker_down_fails_fast_without_librdkafka_lines(args: list[str], tmp_path: Path) -> None:
    # one-shot commands check the broker once (`ingest`, a long-running worker, waits for it instead)
    result = run(args, tmp_path)
    assert_one_line(
        result, f"error: Kafka at {DOWN['kafka']} is not reachable: start the stack with `lakehouse up`"
    )
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_missing_setting(tmp_path: Path) -> None:
    result = run(["query", "SELECT 1"], tmp_path, LAKEHOUSE_S3__ACCESS_KEY=None)
    assert_one_line(
        result,
        "error: missing setting LAKEHOUSE_S3__ACCESS_KEY and LAKEHOUSE_S3__SECRET_KEY: storage requires "
        "credentials; `lakehouse up` generates them for the embedded stack (set it in the environment or .env)",
    )


def test_invalid_setting(tmp_path: Path) -> None:
    result = run(["settings"], tmp_path, LAKEHOUSE_KAFKA__PARTITIONS="many")
    assert result.returncode == 1 and first_line(result).startswith(
        "error: invalid settings: LAKEHOUSE_KAFKA__PARTITIONS: "
    ), result.stderr


def test_catalog_refuses_the_token(seaweedfs, tmp_path: Path) -> None:
    result = run(["snapshots", "bronze.trades"], tmp_path, LAKEHOUSE_CATALOG__URI=seaweedfs.catalog_uri,
                 LAKEHOUSE_S3__ENDPOINT=seaweedfs.s3_endpoint, LAKEHOUSE_S3__SECRET_KEY="wrong")  # fmt: skip
    assert result.returncode == 1, result.stderr
    line = first_line(result)
    assert line.startswith(f"error: catalog at {seaweedfs.catalog_uri} refused the credentials ("), line
    assert line.endswith(f"which `lakehouse up` keeps in {tmp_path / 'data' / 'credentials.env'}"), line


def test_duckdb_error(seaweedfs, tmp_path: Path) -> None:
    result = run(["query", "SELEC 1"], tmp_path, LAKEHOUSE_CATALOG__URI=seaweedfs.catalog_uri,
                 LAKEHOUSE_S3__ENDPOINT=seaweedfs.s3_endpoint, LAKEHOUSE_S3__ACCESS_KEY=seaweedfs.access_key,
                 LAKEHOUSE_S3__SECRET_KEY=seaweedfs.secret_key)  # fmt: skip
    assert result.returncode == 1 and first_line(result).startswith(
        'error: DuckDB: Parser Error: syntax error at or near "SELEC"'
    ), result.stderr


def test_corrupt_replay_file_is_refused_before_the_broker(tmp_path: Path) -> None:
    plain = tmp_path / "capture.ndjson"
    plain.write_text('{"receive_time": "2024-05-01T12:00:00Z", "frame": "{}"}\n')
    result = run(["ingest", "--source", "replay", "--file", str(plain)], tmp_path)
    assert result.returncode == 1 and first_line(result).startswith(
        f"error: replay file {plain} is not zstd-compressed NDJSON ("
    ), result.stderr
    assert first_line(result).endswith(": record one with `lakehouse record --output FILE`")
    wrong = tmp_path / "wrong.ndjson.zst"
    wrong.write_bytes(zstandard.ZstdCompressor().compress(orjson.dumps({"frame": 1}) + b"\n"))
    result = run(["ingest", "--source", "replay", "--file", str(wrong)], tmp_path)
    assert_one_line(
        result,
        f"error: replay file {wrong}: replay line 1 malformed: frame must be a string, got int: "
        "record one with `lakehouse record --output FILE`",
    )


def test_airflow_down(tmp_path: Path) -> None:
    result = run(["trigger", "crypto_hourly"], tmp_path)
    assert_one_line(result, "error: Airflow is not set up in this stack: run `lakehouse up --airflow` first")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["trigger", "crypto_hourly", "--conf", "{nope"], "Error: Invalid value for '--conf': not JSON: "),
        (["trigger", "crypto_hourly", "--conf", "[1]"], "Error: Invalid value for '--conf': expected a JSON object, got list"),
        (["trigger", "crypto_hourly", "--hour", "10 o'clock"], "Error: Invalid value for '--hour': is not an ISO 8601 time"),
        (["query", "SELECT 1", "--table", "bronze.trades", "--as-of", "yesterday"], "Error: Invalid value for '--as-of': is not an ISO 8601 time"),
        (["silver", "--start", "2026-01-01T01:00", "--end", "2026-01-01T00:00"], "Error: Invalid value for --end: --end 2026-01-01T00:00:00+00:00 is not after --start"),
        (["backfill", "--product", "BTC-USD", "--start", "2026-01-01T00:00", "--end", "x"], "Error: Invalid value for '--end': is not an ISO 8601 time"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_before_any_service(args: list[str], error: str, tmp_path: Path) -> None:
    result = run(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(error), result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run(["--debug", "snapshots", "bronze.trades"], tmp_path)
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr


def test_version(tmp_path: Path) -> None:
    result = run(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("lakehouse, version ")


def test_status_on_a_fresh_folder_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run(["status"], tmp_path, LAKEHOUSE_S3__ACCESS_KEY=None, LAKEHOUSE_S3__SECRET_KEY=None)
    assert result.returncode == 1 and "down" in result.stdout, result.stdout + result.stderr
    assert not data.exists(), sorted(data.rglob("*"))  # no credentials.env, no folder at all
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_quality_with_a_reversed_window_pushes_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as gateway:  # a Pushgateway stand-in that only counts connections
        gateway.bind(("127.0.0.1", 0))
        gateway.listen(8)
        gateway.settimeout(0.5)
        port = gateway.getsockname()[1]
        result = run(["quality", "--start", "2026-01-01T01:00", "--end", "2026-01-01T00:00"], tmp_path,
                     LAKEHOUSE_METRICS__PUSHGATEWAY_URL=f"http://127.0.0.1:{port}")  # fmt: skip
        with pytest.raises(TimeoutError):
            gateway.accept()
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Invalid value for --end: --end "), (
        result.stderr
    )


def test_logs_lists_tails_and_refuses_an_unknown_service(tmp_path: Path) -> None:
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "kafka.log").write_text("".join(f"line {i}\n" for i in range(100)))
    listed = run(["logs"], tmp_path)
    assert listed.returncode == 0 and listed.stdout.startswith("kafka ") and "kafka.log" in listed.stdout
    tailed = run(["logs", "kafka", "-n", "3"], tmp_path)
    assert tailed.returncode == 0 and tailed.stdout == "line 97\nline 98\nline 99\n"
    unknown = run(["logs", "nope"], tmp_path)
    assert (
        unknown.returncode == 2
        and "no log 'nope' under" in unknown.stderr
        and "(there are: kafka)" in unknown.stderr
    )


def test_logs_follow_prints_what_is_appended(tmp_path: Path) -> None:
    import selectors

    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "bronze.log").write_text("old\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env["LAKEHOUSE_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.Popen([services.venv_bin("lakehouse"), "logs", "bronze", "-f", "-n", "0"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        # append until the follower (which starts at the end it finds) shows a line: 60 tries at most
        for n in range(60):
            with (logs / "bronze.log").open("a") as log:
                log.write(f"new line {n}\n")
            if selector.select(timeout=0.5):
                break
        assert proc.stdout.readline().startswith("new line "), "nothing followed"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_airflow_set_up_but_down(tmp_path: Path) -> None:
    from infrastructure.airflow_stack import ensure_secrets

    ensure_secrets(tmp_path / "data" / "airflow")  # as `lakehouse up --airflow` left it; not running
    port = services.free_port()
    result = run(["trigger", "crypto_hourly"], tmp_path, LAKEHOUSE_STACK__AIRFLOW_PORT=str(port))
    assert_one_line(
        result,
        f"error: Airflow at http://127.0.0.1:{port} is not reachable: start it with `lakehouse up --airflow`",
    )


def test_catalog_http_error_names_the_table_and_the_fix(seaweedfs, tmp_path: Path) -> None:
    result = run(["snapshots", "nosuch.table"], tmp_path, LAKEHOUSE_CATALOG__URI=seaweedfs.catalog_uri,
                 LAKEHOUSE_S3__ENDPOINT=seaweedfs.s3_endpoint, LAKEHOUSE_S3__ACCESS_KEY=seaweedfs.access_key,
                 LAKEHOUSE_S3__SECRET_KEY=seaweedfs.secret_key)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert first_line(result).startswith(f"error: catalog at {seaweedfs.catalog_uri}: ") and first_line(
        result
    ).endswith(": check the name (`lakehouse init` creates the pipeline's tables)"), result.stderr
    assert "does not exist" in first_line(result) and "Traceback" not in result.stderr


def test_s3_down_while_the_catalog_answers(seaweedfs, tmp_path: Path) -> None:
    import uuid

    import pyarrow as pa

    from infrastructure.catalog import load_catalog
    from tests.fixtures.services import settings_for

    catalog = load_catalog(settings_for(seaweedfs=seaweedfs))
    catalog.create_namespace_if_not_exists("scratch")
    name = f"scratch.s3down_{uuid.uuid4().hex[:8]}"
    catalog.create_table(name, schema=pa.schema([("n", pa.int64())])).append(pa.table({"n": [1, 2]}))
    result = run(
        ["query", f"SELECT sum(n) FROM lake.{name}"],
        tmp_path,
        LAKEHOUSE_CATALOG__URI=seaweedfs.catalog_uri,
        LAKEHOUSE_S3__ACCESS_KEY=seaweedfs.access_key,
        LAKEHOUSE_S3__SECRET_KEY=seaweedfs.secret_key,
    )  # fmt: skip  (S3 endpoint: a closed port)
    assert_one_line(
        result, f"error: S3 at http://{DOWN['s3']} is not reachable: start the stack with `lakehouse up`"
    )
