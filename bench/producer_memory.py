"""Memory the compose stack's producer containers need, measured on the same process natively.

Each venue's producer is one ``lakehouse ingest`` process (``coinbase-producer``,
``binance-producer``, ``coingecko-producer``). This starts a private noida-db broker on a free port,
runs each venue's process for ``--seconds`` with the synthetic source in that venue's own frame
format (so every frame goes through the venue's real parser, pipeline, producer and metrics
server; only the network client is not exercised), samples its RSS with its children every 0.25 s,
and prints each peak against the container's ``mem_limit`` as a ratio (> 1: too tight).

    python -m bench.producer_memory [--seconds 60] [--rate 50]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from bench.bronze import RssSampler
from bench.compose_memory import compose_limits
from infrastructure.services import free_port, venv_bin
from orchestration.local_stack import launch_broker

CONTAINERS = {
    "coinbase": "coinbase-producer",
    "binance": "binance-producer",
    "coingecko": "coingecko-producer",
}


def peak_of(venue: str, rate: float, seconds: float, env: dict[str, str]) -> tuple[int, str]:
    """(peak RSS in bytes, the run's summary line) of one venue's ``lakehouse ingest``."""
    argv = [venv_bin("lakehouse"), "ingest", "--source", "synthetic", "--venue", venue,
            "--rate", str(rate), "--duration", str(seconds)]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = RssSampler()
    sampler.pids[proc.pid] = venue
    sampler.start()
    try:
        out, _ = proc.communicate(timeout=seconds + 120)
    finally:
        sampler.stop.set()
    if proc.returncode != 0:
        raise SystemExit(f"{venue}: lakehouse ingest exited {proc.returncode}:\n{out[-2000:]}")
    return sampler.peaks[venue], out.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each venue's process runs")
    parser.add_argument(
        "--rate", type=float, default=50.0, help="synthetic trades per second (Coinbase, Binance)"
    )
    args = parser.parse_args()
    limits = compose_limits(prefix="")
    print(f"cores {os.cpu_count()}, load avg {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        broker = launch_broker(Path(tmp))
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
            env |= {
                "LAKEHOUSE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
                "LAKEHOUSE_DATA_DIR": tmp,
                # each process serves its metrics as in its container, on ports free here
                **{f"LAKEHOUSE_METRICS__{p}": str(free_port())
                   for p in ("PRODUCER_PORT", "BINANCE_PRODUCER_PORT", "COINGECKO_PRODUCER_PORT")},
            }  # fmt: skip
            print(f"{'container':<20} {'peak MiB':>9} {'limit MiB':>10} {'ratio':>6}")
            for venue, container in CONTAINERS.items():
                peak, summary = peak_of(venue, args.rate if venue != "coingecko" else 1.0, args.seconds, env)
                limit = limits[container]
                print(
                    f"{container:<20} {peak / 2**20:>9.0f} {limit / 2**20:>10.0f} {peak / limit:>6.2f}   {summary}"
                )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
