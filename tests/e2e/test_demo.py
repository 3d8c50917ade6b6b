"""``lakehouse demo`` on its own stack: prints where to look and a live summary, moves trades to bronze,
and stops its children cleanly at the end of ``--duration``."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from infrastructure import services, supervisor
from infrastructure.settings import ENV_PREFIX
from tests.fixtures.bronze import produce_trades, settings_env

TRADES = 2_000


def test_demo_runs_the_pipeline_and_stops_cleanly(tmp_path: Path) -> None:
    plain = supervisor.settings_on_free_ports(tmp_path / "lake", bronze={"flush_seconds": 1.0})
    try:
        settings, _ = supervisor.up(plain)
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(settings_env(settings))
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
            timeout=240,
        )
        out = demo.stdout
        assert demo.returncode == 0, out + demo.stderr
        assert "already running" in out  # the stack was up: the demo's own `up` did nothing
        assert settings.s3.endpoint in out and settings.catalog.uri in out
        assert str(tmp_path / "lake" / "credentials.env") in out
        assert "rows in bronze" in out and "bronze: stopped" in out
        assert re.search(r"bronze freshness \d", out), out  # scraped from the writer's metrics endpoint
        final = re.search(r"bronze now holds ([\d,]+) rows", out)
        assert final is not None, out
        assert int(final.group(1).replace(",", "")) >= TRADES
        assert {s.state for s in supervisor.status(settings)} == {"healthy"}
    finally:
        supervisor.down(plain)
