"""The watchdog restarts a crashed worker with backoff, counts the restarts where `lakehouse status`
reads them, and stops its worker when asked."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from infrastructure import supervisor
from infrastructure.watchdog import read_state
from tests.fixtures.services import settings_for

# crashes (exit 3) on its first two runs, then runs until SIGTERM and exits 0
WORKER = """
import pathlib, signal, sys, time
runs = pathlib.Path(sys.argv[1]); n = int(runs.read_text() or 0) if runs.exists() else 0
runs.write_text(str(n + 1))
if n < 2:
    sys.exit(3)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(0.1)
"""


def test_watchdog_restarts_a_crashed_worker_and_reports_it(tmp_path: Path) -> None:
    settings = settings_for(data_dir=tmp_path / "data")
    state = tmp_path / "data" / "run" / "bronze.watchdog.json"
    dog = subprocess.Popen(
        [sys.executable, "-m", "infrastructure.watchdog", "bronze", str(state), "--",
         sys.executable, "-c", WORKER, str(tmp_path / "runs")],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            data = read_state(state)
            if data and data["restarts"] == 2 and (tmp_path / "runs").read_text() == "3":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no second restart: {read_state(state)}")
        time.sleep(0.5)
        [bronze] = [s for s in supervisor.worker_states(settings) if s.name == "bronze"]
        assert (bronze.state, bronze.restarts) == ("healthy", 2)
        assert "restarts 2" in bronze.detail()
        dog.send_signal(signal.SIGTERM)
        assert dog.wait(timeout=30) == 0
    finally:
        if dog.poll() is None:
            dog.kill()
    log = dog.stderr.read() if dog.stderr else ""
    assert log.count("exited with code 3; restart") == 2, log
    assert not state.exists()  # stopped as asked: status no longer lists it
