"""A benchmark's own stack stops however the benchmark ends: SIGTERM (a ``kill``, a CI timeout)
would end Python without running ``finally`` and leave every service of the stack running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

CHILD = """
import sys, time
from pathlib import Path
from infrastructure import supervisor
from orchestration.local_stack import bench_stack
with bench_stack(Path(sys.argv[1]), log=lambda _: None) as settings:
    pids = [s.pid for s in supervisor.status(settings) if s.pid]
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(300)
"""


def test_sigterm_stops_the_benchmarks_stack(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "lake")], cwd=Path(__file__).parents[2],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    pids: list[int] = []
    try:
        line = proc.stdout.readline()  # the stack is up: its service pids
        pids = [int(p) for p in line.split()]
        assert len(pids) >= 2, f"no stack came up: {line!r}"
        assert all(psutil.pid_exists(p) for p in pids)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        assert not [p for p in pids if _alive(p)], "services of the stack still running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for pid in pids:  # a failed run must not leave them behind either
            if _alive(pid):
                psutil.Process(pid).kill()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
