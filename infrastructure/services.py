"""How to start, wait for and stop the embedded stack's server processes.

Each service is described by a ``ServiceSpec`` built by a pure function (the command line, the
ports that must answer, the log file); ``start``/``wait_ready``/``stop`` do the I/O. The supervisor
(``lakehouse up``) and the test fixtures use the same specs, so tests run what users run.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from infrastructure.settings import (
    CatalogSettings,
    KafkaSettings,
    MetricsSettings,
    S3Settings,
    Settings,
    StackSettings,
)

LOG_TAIL_LINES = 30


class ServiceStartError(RuntimeError):
    """A service did not become ready; the message names it and quotes the tail of its log."""

    def __init__(self, name: str, why: str, log_file: Path | None) -> None:
        tail = tail_of(log_file) if log_file else ""
        super().__init__(
            f"{name} did not come up: {why}" + (f"\n--- tail of {log_file} ---\n{tail}" if tail else "")
        )
        self.service = name
        # a listener another program took between picking the port and binding it: a caller on
        # free-picked ports retries with new ones (see supervisor.up_on_free_ports)
        self.port_in_use = "already in use" in f"{why}\n{tail}".lower()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: tuple[str, ...]
    log_file: Path
    cwd: Path
    host: str
    ready_ports: tuple[int, ...]
    # extra readiness probe after the ports accept connections (e.g. an HTTP endpoint answers)
    ready_probe: Callable[[], bool] | None = field(default=None, compare=False)
    env: dict[str, str] | None = None


# ---------------------------------------------------------------- the services


def venv_bin(name: str) -> str:
    """A console script installed next to this interpreter (the venv's ``bin/``)."""
    return str(Path(sys.executable).parent / name)


def noida_binary() -> Path:
    """The real broker binary inside the ``noida-db`` package (its console script only wraps it)."""
    spec = importlib.util.find_spec("noida_db")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("noida-db is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "noida-db"


def broker_spec(data_dir: Path, host: str, port: int) -> ServiceSpec:
    """noida-db serving only the Kafka protocol; data (topics, offsets) persists in ``data_dir``."""
    return ServiceSpec(
        name="kafka",
        argv=(str(noida_binary()), "start", "--data-dir", str(data_dir), "--host", host,
              "--only", "kafka", "--kafka-port", str(port)),
        log_file=data_dir.parent / "logs" / "kafka.log",
        cwd=data_dir,
        host=host,
        ready_ports=(port,),
    )  # fmt: skip


@dataclass(frozen=True)
class SeaweedPorts:
    s3: int
    iceberg: int
    master: int
    volume: int
    filer: int
    admin: int
    lance: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SeaweedPorts:
        stack = settings.stack
        return cls(
            s3=url_port(settings.s3.endpoint),
            iceberg=url_port(settings.catalog.uri),
            master=stack.seaweed_master_port,
            volume=stack.seaweed_volume_port,
            filer=stack.seaweed_filer_port,
            admin=stack.seaweed_admin_port,
            lance=stack.seaweed_lance_port,
        )

    @staticmethod
    def grpc(port: int) -> int:
        # SeaweedFS's own convention (and its admin worker's assumption): gRPC = HTTP + 10000
        return port + 10000


def url_port(url: str) -> int:
    """The port of ``http://host:port/...`` or of a ``host:port[,host:port]`` bootstrap list (first)."""
    netloc = urlsplit(url if "//" in url else f"//{url.split(',')[0]}").netloc
    port = urlsplit(f"//{netloc}").port
    if port is None:
        raise ValueError(f"no port in {url!r}: the embedded stack needs an explicit port")
    return port


def write_s3_identities(path: Path, access_key: str, secret_key: str) -> None:
    """SeaweedFS identities file: one admin identity; with it, anonymous requests are refused."""
    identities = {
        "identities": [
            {
                "name": "lakehouse",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identities, indent=2))
    path.chmod(0o600)


def seaweedfs_spec(
    data_dir: Path,
    host: str,
    ports: SeaweedPorts,
    identities_file: Path,
    table_bucket: str,
    credentials: tuple[str, str],
) -> ServiceSpec:
    """``weed mini``: master, volume, filer, S3 (credentials required) and the Iceberg REST catalog.

    Every listener has its port here (``-debug`` and ``-metricsPort`` stay off, WebDAV and the admin
    UI too). Beside S3 nothing answers without credentials: ``-disableHttp`` turns off the master's
    and filer's HTTP APIs (S3 reaches them over gRPC), the volume server requires the master's JWT,
    and gRPC requires mutual TLS, all configured by the ``security.toml`` that
    :func:`write_seaweed_security` puts in ``data_dir`` (weed reads it from its working folder).

    Ready when the catalog lists namespaces of the table bucket with these credentials (the bucket
    is created a moment after the ports open) and the master knows every volume on disk (after a
    restart, reads fail until the volume server has reported them).
    """
    p = ports
    argv = (
        # weed's own log files: rotated at 64 MB, two kept per severity (its defaults: 1.8 GB, five)
        venv_bin("weed"), f"-logdir={data_dir}", "-log_max_size_mb=64", "-log_max_files=2", "mini",
        f"-dir={data_dir}", f"-ip={host}", f"-ip.bind={host}",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-disableHttp",
        f"-s3.config={identities_file}", f"-tableBucket={table_bucket}",
        f"-s3.port={p.s3}", f"-s3.port.grpc={p.grpc(p.s3)}", f"-s3.port.iceberg={p.iceberg}",
        f"-master.port={p.master}", f"-master.port.grpc={p.grpc(p.master)}",
        f"-volume.port={p.volume}", f"-volume.port.grpc={p.grpc(p.volume)}",
        f"-filer.port={p.filer}", f"-filer.port.grpc={p.grpc(p.filer)}",
        f"-admin.port={p.admin}", f"-admin.port.grpc={p.grpc(p.admin)}", f"-s3.port.lance={p.lance}",
    )  # fmt: skip
    return ServiceSpec(
        name="seaweedfs",
        argv=argv,
        log_file=data_dir.parent / "logs" / "seaweedfs.log",
        cwd=data_dir,
        host=host,
        ready_ports=(p.s3, p.iceberg),
        ready_probe=lambda: (
            catalog_answers(f"http://{host}:{p.iceberg}", f"s3://{table_bucket}", credentials)
            and volumes_served(data_dir, f"{host}:{p.master}")
        ),
        # the filer names its metadata log's minute files in local time: UTC, so the purge of
        # infrastructure.seaweed_log reads them the same whatever the machine's zone
        env={"TZ": "UTC"},
    )


SEAWEED_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
SEAWEED_GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "client")


def seaweed_security_toml(keys: dict[str, str], tls: Path) -> str:
    """SeaweedFS ``security.toml`` (pure): JWT keys for volume and filer reads and writes, mutual TLS
    on every gRPC listener with one CA and one node certificate (weed does not check host names)."""
    lines = ["# generated by the lakehouse supervisor: keys and certificates are this stack's own"]
    # a minute, not weed's 10 s: on a loaded machine an upload may start well after its assign
    for section in SEAWEED_JWT_SECTIONS:
        lines += [f"[{section}]", f'key = "{keys[section]}"', "expires_after_seconds = 60"]
    # the volume server's status page over HTTP leaks nothing once off
    lines += ["[access]", "ui = false", "[grpc]", f'ca = "{tls / "ca.crt"}"']
    for component in SEAWEED_GRPC_COMPONENTS:
        lines += [f"[grpc.{component}]", f'cert = "{tls / "node.crt"}"', f'key = "{tls / "node.key"}"']
    return "\n".join(lines) + "\n"


def write_seaweed_security(data_dir: Path) -> Path:
    """``<data_dir>/security.toml`` and its TLS files (0600), generated once and kept across restarts."""
    path = data_dir / "security.toml"
    if path.is_file():
        return path
    from infrastructure import tls  # cryptography: only needed the first time

    folder = data_dir / "tls"
    for name, pem in tls.ca_and_node("seaweedfs").items():
        write_private(folder / name, pem)
    keys = {section: secrets.token_urlsafe(32) for section in SEAWEED_JWT_SECTIONS}
    data_dir.mkdir(parents=True, exist_ok=True)
    write_private(path, seaweed_security_toml(keys, folder))
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


# ---------------------------------------------------------------- process I/O


def start(spec: ServiceSpec) -> subprocess.Popen:
    """Start the service in its own process group, output appended to its log file."""
    spec.cwd.mkdir(parents=True, exist_ok=True)
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    with spec.log_file.open("ab") as log:
        return subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(spec.env or {})},
            # what a service creates (data, sockets, logs) is its owner's only
            umask=0o077,
        )


def wait_ready(spec: ServiceSpec, proc: subprocess.Popen | None, timeout_s: float) -> None:
    """Block until every ready port accepts and the probe passes; raise ``ServiceStartError`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceStartError(spec.name, f"process exited with code {proc.returncode}", spec.log_file)
        if all(port_open(spec.host, port) for port in spec.ready_ports) and (
            spec.ready_probe is None or spec.ready_probe()
        ):
            return
        time.sleep(0.1)
    raise ServiceStartError(spec.name, f"not ready after {timeout_s:.0f} s", spec.log_file)


def stop(pid: int, timeout_s: float = 15.0) -> bool:
    """SIGTERM the process group led by ``pid``, SIGKILL after ``timeout_s``. True if it was running."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return True


def pid_alive(pid: int) -> bool:
    try:
        # reap it if it is our child, so a zombie does not count as alive
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


# ---------------------------------------------------------------- weed shell

SHELL_TIMEOUT_S = 600.0  # a vacuum copies a volume's live needles: minutes for a full 1 GB volume


class StorageShellError(RuntimeError):
    """``weed shell`` failed or is unavailable; the message names the command and the fix."""


def run_shell(folder: Path, master: str, script: str, timeout_s: float = SHELL_TIMEOUT_S) -> str:
    """Run ``script`` (one command per line) in ``weed shell`` against ``master``, from SeaweedFS's
    data ``folder``: weed reads the ``security.toml`` there (gRPC mutual TLS)."""
    argv = [venv_bin("weed"), "shell", f"-master={master}"]
    try:
        proc = subprocess.run(
            argv, input=script, capture_output=True, text=True, cwd=folder, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StorageShellError(
            f"weed shell against {master} failed ({exc}); is the stack up? (`lakehouse status`)"
        ) from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise StorageShellError(
            f"weed shell against {master} failed: {tail[0]}; is the stack up? (`lakehouse status`)"
        )
    return proc.stdout


def volumes_served(folder: Path, master: str) -> bool:
    """Every volume on disk in ``folder`` is registered with the master, so reads of any object can
    be routed. After a restart the S3 gateway and the catalog answer (the filer's store is local)
    seconds before the volume server's first heartbeat; a read meanwhile fails (INTERNAL_FAILURE)."""
    on_disk = len(list(folder.glob("*.dat")))
    try:
        listing = run_shell(folder, master, "volume.list\n", timeout_s=30)
    except StorageShellError:
        return False
    return len(re.findall(r"volume Id:\d+,", listing)) >= on_disk


def catalog_answers(uri: str, warehouse: str, credentials: tuple[str, str]) -> bool:
    from pyiceberg.catalog.rest import RestCatalog  # heavy; only the seaweedfs probe needs it

    try:
        RestCatalog("probe", uri=uri, warehouse=warehouse, credential=":".join(credentials)).list_namespaces()
    except Exception:  # any failure means "not ready yet"; wait_ready reports the log on timeout
        return False
    return True


def http_ok(url: str, auth: tuple[str, str] | None = None) -> bool:
    """The URL answers 2xx (with HTTP basic ``auth`` when given)."""
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", basic_auth_header(*auth))
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return 200 <= response.status < 300
    except OSError:
        return False


def basic_auth_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def scrape_gauge(url: str, name: str) -> float | None:
    """A metric from a Prometheus text endpoint, its samples summed (a gauge per partition reads as
    its total); None if the endpoint is unreachable or has no such metric."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    values = [s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    return sum(values) if values else None


# Picked ports stay below Linux's ephemeral range (32768-60999 by default), where outgoing
# connections take their local ports, and so do their gRPC twins (+10000).
FREE_PORT_RANGE = (10000, 22000)


def default_stack_ports() -> frozenset[int]:
    """Every port a stack on the default settings listens on (gRPC twins included): never picked,
    so `make demo` started while tests run still finds its ports free."""
    stack, metrics = StackSettings(), MetricsSettings()
    http = {
        url_port(S3Settings().endpoint),
        stack.seaweed_master_port,
        stack.seaweed_volume_port,
        stack.seaweed_filer_port,
        stack.seaweed_admin_port,
    }
    return frozenset({
        *http, *map(SeaweedPorts.grpc, http), url_port(KafkaSettings().bootstrap_servers),
        url_port(CatalogSettings().uri), stack.seaweed_lance_port, stack.prometheus_port,
        stack.airflow_port, url_port(metrics.pushgateway_url), metrics.producer_port,
        metrics.bronze_port, metrics.dashboard_port, metrics.binance_producer_port,
        metrics.coingecko_producer_port, metrics.bronze_reference_port,
    })  # fmt: skip


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port(host: str = "127.0.0.1", grpc_too: bool = False) -> int:
    """A port nobody listens on now (tests and benchmarks run beside a live stack).

    ``grpc_too``: also keep ``port + 10000`` free, for SeaweedFS's gRPC convention. A port is handed
    out once per process, so one stack's ports never overlap another's picked in the same process,
    and never one of a default stack's.
    Another process may still take it before the service binds: callers that start services on
    picked ports retry with new ones when that happens (``ServiceStartError.port_in_use``).
    """
    with _handed_out_lock:
        if not _handed_out:
            _handed_out.update(default_stack_ports())
        for _ in range(200):
            port = random.randrange(*FREE_PORT_RANGE)
            wanted = (port, SeaweedPorts.grpc(port)) if grpc_too else (port,)
            if not _handed_out.intersection(wanted) and all(_bindable(host, p) for p in wanted):
                _handed_out.update(wanted)
                return port
    raise RuntimeError("no free port found in 200 tries")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def tail_of(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64 * 1024))
        return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
