"""``lakehouse demo`` on its own stack: prints where to look and a live summary, moves trades to bronze,
and stops its children cleanly at the end of ``--duration``."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from infrastructure import services, supervisor
from infrastructure.settings import ENV_PREFIX, to_environment
from tests.fixtures.bronze import produce_trades

TRADES = 2_000
SCRAPE_WAIT_S = 60


def scraped(settings, expr: str, jobs: set[str] | None = None) -> list[dict]:
    """The embedded Prometheus' answer to ``expr`` once it is not empty and, given ``jobs``, holds a
    series for each of them (bounded wait: pushes land between scrapes, so one scrape may have seen
    only the earlier tasks' pushes)."""
    from monitoring.dashboard.data import prometheus_get

    url = f"http://{settings.stack.host}:{settings.stack.prometheus_port}"
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while True:
        result = prometheus_get(url, "/api/v1/query", {"query": expr})["result"]
        if result and (jobs is None or jobs <= {r["metric"].get("job") for r in result}):
            return result
        assert time.monotonic() < deadline, f"{expr}: {result} after {SCRAPE_WAIT_S} s"
        time.sleep(1)


def test_demo_runs_the_pipeline_and_stops_cleanly(tmp_path: Path) -> None:
    settings = supervisor.up_on_free_ports(tmp_path / "lake", bronze={"flush_seconds": 1.0})
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(to_environment(settings))
        # as for a user: no start date configured, so the stack's own first hour is used
        env.pop("LAKEHOUSE_ORCHESTRATION__START_DATE", None)
        # no Coinbase from tests: a closed local port, so `--source auto` falls back at once
        env["LAKEHOUSE_COINBASE__WS_URL"] = f"ws://127.0.0.1:{services.free_port()}"
        init = subprocess.run(
            [services.venv_bin("lakehouse"), "init"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert init.returncode == 0, init.stderr
        produce_trades(settings, TRADES)

        demo = subprocess.run(
            [services.venv_bin("lakehouse"), "demo", "--duration", "25"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        out = demo.stdout
        assert demo.returncode == 0, out + demo.stderr
        assert "already running" in out  # the stack was up: the demo's own `up` did nothing
        assert settings.s3.endpoint in out and settings.catalog.uri in out
        assert str(tmp_path / "lake" / "credentials.env") in out
        assert f"dashboard: http://{settings.stack.host}:{settings.metrics.dashboard_port}/" in out
        assert "rows in bronze" in out and "bronze: stopped" in out
        # ingest stops first and the writer drains the topic before it stops
        assert out.index("ingest: stopped") < out.index("bronze: everything in the topic is written"), out
        # the fallback to synthetic trades is said on the console, not only in the ingest log
        assert re.search(
            r"ingest: live Coinbase feed unreachable .*switching to the SYNTHETIC source", out
        ), out
        assert re.search(r"bronze freshness \d", out), out  # scraped from the writer's metrics endpoint
        final = re.search(r"bronze now holds ([\d,]+) rows", out)
        assert final is not None, out
        assert int(final.group(1).replace(",", "")) >= TRADES
        # Airflow came up with a generated password, printed once
        home = tmp_path / "lake" / "airflow"
        password = json.loads((home / "passwords.json").read_text())["admin"]
        assert password != "admin" and f"password {password}" in out
        # the full cycle: the hourly run owned the current hour and every task succeeded
        triggered = re.search(r"triggered crypto_hourly for (\S+ \S+)\.\.\+1h UTC: run (\S+)", out)
        assert triggered is not None, out
        assert re.search(r"crypto_hourly run \S+: success", out), out + demo.stderr
        for task in ("silver", "silver_reference", "gold", "quality", "publish"):
            assert f"'{task}': 'success'" in out, out
        with sqlite3.connect(home / "airflow.db") as db:
            start, end = db.execute(
                "select data_interval_start, data_interval_end from dag_run where run_id = ?",
                (triggered.group(2),),
            ).fetchone()
        hour = datetime.strptime(triggered.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        assert datetime.fromisoformat(start).replace(tzinfo=UTC) == hour
        assert (datetime.fromisoformat(end).replace(tzinfo=UTC) - hour).total_seconds() == 3600
        candles = out.split("gold candles", 1)[1]
        assert "trade_count" in candles and re.search(r"(BTC|ETH|SOL|DOGE)-USD", candles), candles
        # the schedule starts at the hour this stack was set up, persisted
        assert (home / "start_date").read_text().strip().startswith(f"{hour:%Y-%m-%d}")
        assert {s.state for s in supervisor.status(settings)} == {"healthy"}
        # the hourly run's tasks pushed their metrics; the stack's Prometheus scraped the gateway
        jobs = {"silver", "gold", "quality"}
        pushed = scraped(settings, 'lakehouse_job_last_success{job=~"silver|gold|quality"} == 1', jobs)
        assert {r["metric"]["job"] for r in pushed} == jobs, pushed
        assert scraped(settings, "lakehouse_quality_suite_success == 1"), "quality suites not scraped"
        again = subprocess.run(
            [services.venv_bin("lakehouse"), "up", "--airflow"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert again.returncode == 0 and "everything was already running" in again.stdout, again.stdout
        assert "password" not in again.stdout
        # `make airflow-trigger` = `lakehouse trigger`: REST trigger, prints the run id
        trigger = subprocess.run(
            [services.venv_bin("lakehouse"), "trigger", "crypto_hourly", "--hour", f"{hour:%Y-%m-%dT%H:%M}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        with sqlite3.connect(home / "airflow.db") as db:
            found = db.execute(
                "select data_interval_start, run_type from dag_run where run_id = ?",
                (trigger.stdout.strip(),),
            ).fetchone()
        assert found is not None and found[1] == "manual", trigger.stdout
        assert datetime.fromisoformat(found[0]).replace(tzinfo=UTC) == hour
    finally:
        supervisor.down(settings)
    assert {s.state for s in supervisor.status(settings)} == {"down"}
