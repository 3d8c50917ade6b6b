"""The product's own test-stack helpers: services on free ports and data to feed them, for the
test fixtures and the benchmarks alike (so neither imports the other).

A broker and a SeaweedFS start on free 127.0.0.1 ports through the same ``ServiceSpec``s that
``lakehouse up`` uses (``infrastructure.supervisor.up_on_free_ports`` starts a whole stack);
``settings_for`` points a ``Settings`` at them; ``synthetic_trade`` and ``produce`` put numbered
trades in the trades topic as the pipeline's own producer would; ``bench_stack`` is a benchmark's own
whole stack, stopped however the benchmark ends.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from confluent_kafka import Producer

from infrastructure import services, supervisor
from infrastructure.kafka import producer_config
from infrastructure.services import SeaweedPorts, ServiceSpec
from infrastructure.settings import Settings
from infrastructure.supervisor import isolated_settings
from ingestion.events import Trade

START_TIMEOUT_S = 60


@contextmanager
def bench_stack(
    data_dir: Path, log: Callable[[str], None] = print, airflow: bool = False, **overrides: object
) -> Iterator[Settings]:
    """A whole embedded stack of a benchmark's own, on free ports (``up_on_free_ports``), stopped on
    the way out: on an error, Ctrl-C, and SIGTERM too (``kill``, a CI timeout), which would otherwise
    end Python without running ``finally`` and leave the services running."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = None
    try:
        settings = supervisor.up_on_free_ports(data_dir, log, airflow=airflow, **overrides)
        yield settings
    finally:
        if settings is not None:
            supervisor.down(settings)
        signal.signal(signal.SIGTERM, previous)


@dataclass
class RunningService:
    spec: ServiceSpec
    proc: subprocess.Popen | None = field(default=None)

    def start(self) -> None:
        self.proc = services.start(self.spec)
        services.wait_ready(self.spec, self.proc, START_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is not None:
            services.stop(self.proc.pid)
            self.proc.wait(timeout=10)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@dataclass
class Broker(RunningService):
    bootstrap: str = ""


@dataclass
class SeaweedFS(RunningService):
    s3_endpoint: str = ""
    catalog_uri: str = ""
    access_key: str = ""
    secret_key: str = ""
    master_port: int = 0  # for ``weed shell`` (settings.stack.seaweed_master_port)


R = TypeVar("R", bound=RunningService)


def start_on_free_ports(build: Callable[[], R], attempts: int = 3) -> R:
    """Start the service ``build`` makes on free-picked ports; when another program took one between
    the pick and the bind, build it again (new ports) and retry."""
    for attempt in range(1, attempts + 1):
        service = build()
        try:
            service.start()
            return service
        except services.ServiceStartError as exc:
            service.stop()
            if not exc.port_in_use or attempt == attempts:
                raise
    raise AssertionError("unreachable")


def launch_broker(root: Path) -> Broker:
    """Start a noida-db broker with its data in ``root`` on a free port (for a fixture or a
    benchmark); the caller stops it."""

    def build() -> Broker:
        port = services.free_port()
        spec = services.broker_spec(root / "kafka", "127.0.0.1", port)
        return Broker(spec=spec, bootstrap=f"127.0.0.1:{port}")

    return start_on_free_ports(build)


def launch_seaweedfs(root: Path) -> SeaweedFS:
    """Start a SeaweedFS in ``root`` on free ports, S3 credentials required and its internals locked
    as ``lakehouse up`` locks them (for a fixture or benchmark that needs a lakehouse of its own);
    the caller stops it."""
    key, secret = f"test{secrets.token_hex(6)}", secrets.token_hex(20)
    identities = root / "s3-identities.json"
    services.write_s3_identities(identities, key, secret)
    services.write_seaweed_security(root / "seaweedfs")

    def build() -> SeaweedFS:
        ports = SeaweedPorts(*(services.free_port(grpc_too=True) for _ in range(7)))
        spec = services.seaweedfs_spec(
            root / "seaweedfs", "127.0.0.1", ports, identities, "warehouse", (key, secret)
        )
        return SeaweedFS(
            spec=spec,
            s3_endpoint=f"http://127.0.0.1:{ports.s3}",
            catalog_uri=f"http://127.0.0.1:{ports.iceberg}",
            access_key=key,
            secret_key=secret,
            master_port=ports.master,
        )

    return start_on_free_ports(build)


def settings_for(
    broker: Broker | None = None,
    seaweedfs: SeaweedFS | None = None,
    data_dir: Path | None = None,
    **overrides,
) -> Settings:
    """Settings pointing at the test services (and nothing from the developer's .env)."""
    # batch jobs push metrics: to a closed port, never into a user's Pushgateway on the default one
    values: dict = {"metrics": {"pushgateway_url": f"http://127.0.0.1:{services.free_port()}"}}
    if broker is not None:
        values["kafka"] = {"bootstrap_servers": broker.bootstrap}
    if seaweedfs is not None:
        values["s3"] = {
            "endpoint": seaweedfs.s3_endpoint,
            "access_key": seaweedfs.access_key,
            "secret_key": seaweedfs.secret_key,
        }
        values["catalog"] = {"uri": seaweedfs.catalog_uri}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return isolated_settings(values, overrides)


# more products than partitions, so keys spread over every partition of the test topics
PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD", "ADA-USD", "XRP-USD", "LTC-USD", "AVAX-USD",
            "DOT-USD", "LINK-USD", "BCH-USD", "XLM-USD")  # fmt: skip


def synthetic_trade(i: int, event_time: datetime | None = None) -> Trade:
    """Trade number ``i``: unique trade id, products in turn, exact decimal strings."""
    when = event_time or datetime(2026, 11, 22, tzinfo=UTC) + timedelta(milliseconds=i)
    return Trade(
        exchange="coinbase",
        product_id=PRODUCTS[i % len(PRODUCTS)],
        trade_id=i,
        price=Decimal(f"{1000 + i % 997}.{i % 100:02d}"),
        size=Decimal(f"0.{i % 9973 + 1:08d}"),
        side="buy" if i % 2 else "sell",
        event_time=when,
        receive_time=when + timedelta(milliseconds=3),
        sequence=i,
        source="synthetic",
        raw=f'{{"type":"match","trade_id":{i}}}',
    )


def produce(
    settings: Settings, messages: Iterable[tuple[bytes | None, bytes | None]], topic: str | None = None
) -> list[tuple[int, int]]:
    """Produce (key, value) pairs to ``topic`` (the trades topic by default); returns the (partition,
    offset) of each, in order of delivery. Raises if any delivery failed."""
    # the ingestion producer's client configuration (idempotence, acks, compression): the writer
    # reads batches as the stack's own producer writes them
    producer = Producer(producer_config(settings.kafka, **{"queue.buffering.max.messages": 200_000}))
    delivered: list[tuple[int, int]] = []
    failures: list[str] = []

    def on_delivery(err, msg) -> None:
        if err is not None:
            failures.append(str(err))
        else:
            delivered.append((msg.partition(), msg.offset()))

    for key, value in messages:
        while True:
            try:
                producer.produce(
                    topic or settings.kafka.trades_topic, value=value, key=key, on_delivery=on_delivery
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError("messages still queued after 60 s")
    if failures:
        raise RuntimeError(f"{len(failures)} deliveries failed, e.g. {failures[:3]}")
    return delivered
