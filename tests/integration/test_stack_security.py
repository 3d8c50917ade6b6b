"""Two whole embedded stacks side by side, and what a local user without the credentials gets.

Every listener of every service is one its settings name (on 127.0.0.1), two stacks share none, a
failed ``up`` stops what it had started, and picked ports that another program took are picked
again. Beside S3 and the catalog (tested in test_stack.py), SeaweedFS's master, filer and volume
APIs, its gRPC listeners and the Pushgateway refuse requests without the stack's credentials.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from pydantic import SecretStr

from infrastructure import services, supervisor
from infrastructure.job_metrics import build_registry, push_job_metrics
from infrastructure.services import SeaweedPorts, ServiceStartError, port_open
from infrastructure.settings import Settings
from tests.fixtures.services import listeners_of

LOOPBACK = "127.0.0.1"


def configured_ports(settings: Settings) -> dict[str, set[int]]:
    """The ports each service may listen on, from the settings alone."""
    seaweed = SeaweedPorts.from_settings(settings)
    http = (seaweed.s3, seaweed.master, seaweed.volume, seaweed.filer, seaweed.admin)
    return {
        "kafka": {services.url_port(settings.kafka.bootstrap_servers)},
        "seaweedfs": {*http, *map(SeaweedPorts.grpc, http), seaweed.iceberg, seaweed.lance},
        "prometheus": {settings.stack.prometheus_port},
        "pushgateway": {services.url_port(settings.metrics.pushgateway_url)},
    }


def ephemeral_range() -> range:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    return range(low, high + 1)


@pytest.fixture(scope="module")
def two_stacks(tmp_path_factory: pytest.TempPathFactory):
    first = supervisor.up_on_free_ports(tmp_path_factory.mktemp("first"))
    try:
        second = supervisor.up_on_free_ports(tmp_path_factory.mktemp("second"))
        try:
            yield first, second
        finally:
            supervisor.down(second)
    finally:
        supervisor.down(first)


def stack_listeners(settings: Settings) -> dict[str, set[tuple[str, int]]]:
    return {s.name: listeners_of(s.pid) for s in supervisor.status(settings) if s.pid is not None}


def test_every_listener_is_configured_loopback_and_two_stacks_share_none(two_stacks) -> None:
    seen: list[set[int]] = []
    for settings in two_stacks:
        assert {s.state for s in supervisor.status(settings)} == {"healthy"}
        listening = stack_listeners(settings)
        allowed = configured_ports(settings)
        assert set(listening) == set(allowed)
        for name, sockets in listening.items():
            assert {ip for ip, _ in sockets} == {LOOPBACK}, (name, sockets)
            extra = {port for _, port in sockets} - allowed[name]
            if name == "kafka":
                # noida-db's control socket is bound to port 0: the kernel picks a free ephemeral
                # port, so it can never collide with another listener
                assert len(extra) <= 1 and all(p in ephemeral_range() for p in extra), sockets
            else:
                assert not extra, (name, sockets)
            assert allowed[name] <= {port for _, port in sockets}, (name, sockets)
        seen.append({port for sockets in listening.values() for _, port in sockets})
    assert not seen[0] & seen[1]


def test_a_failed_up_stops_what_it_had_started(tmp_path: Path) -> None:
    settings = supervisor.settings_on_free_ports(tmp_path / "lake")
    catalog_port = services.url_port(settings.catalog.uri)
    with socket.socket() as squatter:  # kafka starts, then seaweedfs finds its catalog port taken
        squatter.bind((LOOPBACK, catalog_port))
        squatter.listen()
        logged: list[str] = []
        with pytest.raises(ServiceStartError) as err:
            supervisor.up(settings, logged.append)
    assert err.value.service == "seaweedfs" and err.value.port_in_use
    assert "kafka: stopped (up failed)" in logged
    assert {s.state for s in supervisor.status(settings)} == {"down"}
    assert not port_open(LOOPBACK, services.url_port(settings.kafka.bootstrap_servers))
    assert not list((tmp_path / "lake" / "run").glob("*.pid"))


def test_up_on_free_ports_picks_again_when_a_picked_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = supervisor.settings_on_free_ports
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # the first pick's broker port is taken by the time up binds it; later picks are real ones
        queue = [real(tmp_path / "lake", kafka={"bootstrap_servers": f"{LOOPBACK}:{taken}"})]
        picks: list[Settings] = []

        def pick(data_dir: Path, **overrides: object) -> Settings:
            picks.append(queue.pop() if queue else real(data_dir, **overrides))
            return picks[-1]

        monkeypatch.setattr(supervisor, "settings_on_free_ports", pick)
        settings = supervisor.up_on_free_ports(tmp_path / "lake")
        try:
            assert len(picks) == 2
            assert services.url_port(settings.kafka.bootstrap_servers) != taken
            assert {s.state for s in supervisor.status(settings)} == {"healthy"}
        finally:
            supervisor.down(settings)


# ---------------------------------------------------------------- credentials


def answer(url: str, method: str = "GET", data: bytes | None = None, auth: tuple[str, str] | None = None):
    """(status, body) of one request; a refused connection is (None, b"")."""
    request = urllib.request.Request(url, data=data, method=method)
    if auth is not None:
        request.add_header("Authorization", services.basic_auth_header(*auth))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return None, b""


def test_seaweedfs_master_filer_and_volume_refuse_requests_without_credentials(two_stacks) -> None:
    settings = two_stacks[0]
    p = SeaweedPorts.from_settings(settings)
    bucket = settings.s3.warehouse_bucket
    master, filer, volume = (f"http://{LOOPBACK}:{port}" for port in (p.master, p.filer, p.volume))
    refused = [
        answer(f"{filer}/buckets/{bucket}/"),  # list the warehouse
        answer(f"{filer}/buckets/{bucket}/evil.txt", "PUT", b"x"),  # write into the bucket
        answer(f"{master}/dir/assign"),  # a file id to write with
        answer(f"{master}/submit", "POST", b"x"),  # the master writes on the caller's behalf
        answer(f"{master}/col/delete?collection={bucket}"),  # drop the bucket's volumes
        answer(f"{master}/vol/grow?count=1"),
        answer(f"{master}/dir/lookup?volumeId=1"),
        answer(f"{volume}/1,0000000001"),  # read a needle
        answer(f"{volume}/1,0000000001", "PUT", b"x"),  # write one
        answer(f"http://{LOOPBACK}:{p.lance}/v1/namespace/%24/list"),  # Lance signs with the S3 keys
        answer(f"http://{LOOPBACK}:{p.lance}/v1/namespace/evil/create", "POST", b"{}"),
    ]
    assert [status for status, _ in refused] == [404] * 7 + [401] * 2 + [403] * 2, refused


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what every gRPC (HTTP/2) client sends first


def grpc_greeting(port: int, tls: Path, with_certificate: bool) -> bytes:
    """The first bytes a gRPC listener answers an HTTP/2 preface with, over TLS trusting the stack's CA."""
    context = ssl.create_default_context(cafile=tls / "ca.crt")
    context.check_hostname = False  # weed's certificates name no host (it does not check them)
    context.set_alpn_protocols(["h2"])
    if with_certificate:
        context.load_cert_chain(tls / "node.crt", tls / "node.key")
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw, context.wrap_socket(raw) as conn:
        conn.sendall(PREFACE)
        return conn.recv(9)  # TLS 1.3 reports a missing client certificate only here


def test_seaweedfs_grpc_requires_the_stacks_client_certificate(two_stacks) -> None:
    settings = two_stacks[0]
    p = SeaweedPorts.from_settings(settings)
    tls = settings.data_dir / "seaweedfs" / "tls"
    for port in map(SeaweedPorts.grpc, (p.master, p.volume, p.filer, p.s3, p.admin)):
        try:
            anonymous = grpc_greeting(port, tls, with_certificate=False)
        except (ssl.SSLError, ConnectionError):
            anonymous = b""
        assert anonymous == b"", port
        assert len(grpc_greeting(port, tls, with_certificate=True)) == 9, port  # a SETTINGS frame
    # and plain gRPC without TLS gets no HTTP/2 frame back
    with socket.create_connection((LOOPBACK, SeaweedPorts.grpc(p.filer)), timeout=5) as raw:
        raw.sendall(PREFACE + bytes(9))
        assert not raw.recv(64).startswith(b"\x00")


def test_the_pushgateway_requires_its_credentials(two_stacks) -> None:
    settings = two_stacks[0]
    url = settings.metrics.pushgateway_url
    user, password = settings.metrics.pushgateway_auth()
    assert answer(f"{url}/metrics")[0] == 401
    assert answer(f"{url}/metrics", auth=(user, password + "x"))[0] == 401
    assert answer(f"{url}/metrics/job/evil", "PUT", b"evil_total 1\n")[0] == 401
    assert answer(f"{url}/metrics", auth=(user, password))[0] == 200

    anonymous = settings.model_copy(
        update={"metrics": settings.metrics.model_copy(update={"pushgateway_password": None})}
    )
    registry = build_registry("security_test", True, 1.0)
    assert not push_job_metrics(anonymous, "security_test", registry)
    assert push_job_metrics(settings, "security_test", registry)
    assert b'job="security_test"' in answer(f"{url}/metrics", auth=(user, password))[1]


def test_generated_credentials_are_private_files(two_stacks) -> None:
    root = two_stacks[0].data_dir
    secrets = [
        root / "credentials.env",
        root / "config" / "pushgateway-web.yml",
        root / "config" / "pushgateway.password",
        root / "config" / "prometheus.yml",
        root / "seaweedfs" / "security.toml",
        root / "seaweedfs" / "tls" / "node.key",
    ]
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in secrets} == {
        path.name: "0o600" for path in secrets
    }
    assert "LAKEHOUSE_METRICS__PUSHGATEWAY_PASSWORD=" in (root / "credentials.env").read_text()


def test_the_embedded_broker_checks_no_credentials_so_only_loopback_protects_it(two_stacks) -> None:
    """noida-db completes a SASL/PLAIN login whatever the password (and takes clients without one):
    the embedded stack cannot require Kafka credentials, so its broker binds 127.0.0.1 only (see the
    listener test above). Should a noida-db release start checking them, this fails: then generate
    a broker password in `up` like the Pushgateway's."""
    from confluent_kafka.admin import AdminClient

    from infrastructure.kafka import client_config

    settings = two_stacks[0]
    anyone = settings.kafka.model_copy(
        update={
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_username": "nobody",
            "sasl_password": SecretStr("wrong"),
        }
    )
    topics = AdminClient(client_config(anyone)).list_topics(timeout=10).topics
    assert "__consumer_offsets" in topics
    broker = services.url_port(settings.kafka.bootstrap_servers)
    assert {ip for ip, port in stack_listeners(settings)["kafka"] if port == broker} == {LOOPBACK}
