"""Memory the compose stack's Airflow containers need, measured on the same processes natively.

The compose file's ``mem_limit`` of each Airflow container must hold its component, its healthcheck
(a second Airflow process: ``airflow jobs check``) and, for the scheduler, the LocalExecutor's task
processes. This starts the embedded stack with Airflow on free ports, runs one ``crypto_hourly``
hour through it, samples each component's RSS with its children every 0.25 s, measures one
``airflow jobs check``, and prints each peak against the compose limit as a ratio (> 1: too tight).

    python -m bench.compose_memory [--seconds 120]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import yaml

from bench.bronze import RssSampler
from infrastructure import airflow_stack, supervisor
from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.services import venv_bin
from orchestration.api import AirflowClient
from orchestration.cli.demo import HOURLY_RUN_TIMEOUT_S
from orchestration.local_stack import bench_stack

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def peak_rss_of(argv: list[str], env: dict[str, str]) -> int:
    """Peak RSS (bytes, with children) of one command, polled every 50 ms."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        try:
            p = psutil.Process(proc.pid)
            peak = max(peak, p.memory_info().rss + sum(c.memory_info().rss for c in p.children(True)))
        except psutil.Error:
            pass
        time.sleep(0.05)
    return peak


def compose_limits(prefix: str = "airflow-") -> dict[str, int]:
    """``mem_limit`` in bytes of the compose services whose name starts with ``prefix``."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {
        name: int(str(s["mem_limit"])[:-1]) * units[str(s["mem_limit"])[-1].lower()]
        for name, s in services.items()
        if name.startswith(prefix) and "mem_limit" in s
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="sampling after the hourly run")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f}")
    sampler = RssSampler()
    # free ports, picked again if another program takes one first; stopped however the run ends
    lake = Path(tempfile.mkdtemp(prefix="bench-airflow-")) / "lake"
    with bench_stack(lake, airflow=True) as settings:
        try:
            sampler.pids.update({s.pid: s.name for s in supervisor.status(settings) if s.pid})
            sampler.start()
            ensure_topics(settings.kafka)
            ensure_tables(load_catalog(settings))
            client = AirflowClient.login(settings)
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            run = client.trigger("crypto_hourly", hour=hour)
            state = client.wait("crypto_hourly", run, HOURLY_RUN_TIMEOUT_S)
            print(f"crypto_hourly {run}: {state}")
            time.sleep(args.seconds)
            env = {**os.environ, **airflow_stack.component_env(settings)}
            check = peak_rss_of(
                [venv_bin("airflow"), "jobs", "check", "--job-type", "TriggererJob", "--allow-multiple"], env
            )
        finally:
            sampler.stop.set()
    limits = compose_limits()
    print(f"{'component':<24}{'peak RSS':>10}{'+ check':>10}{'limit':>8}{'ratio':>7}  (MiB)")
    for name, rss in sorted(sampler.peaks.items()):
        if name in limits:
            need = rss + (check if name != "airflow-apiserver" else 0)  # its check is an HTTP call
            print(
                f"{name:<24}{rss / 2**20:>10,.0f}{need / 2**20:>10,.0f}{limits[name] / 2**20:>8,.0f}"
                f"{need / limits[name]:>7.2f}"
            )
    print(f"one `airflow jobs check`: {check / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
