"""The embedded stack's supervisor behind ``lakehouse up`` / ``down`` / ``status``.

Every service is a ``StackService`` (a ``ServiceSpec`` plus the URL a user points a client at) made
by one builder function in ``SERVICE_BUILDERS``; a later stage adds services (Airflow's components,
a Pushgateway) by appending builders, nothing else changes. Layout under ``settings.data_dir``::

    credentials.env        generated S3 key pair and Pushgateway password (0600), read by load_settings
    config/                generated service configs (S3 identities, prometheus.yml, the
                           Pushgateway's web config and password file), 0600
    seaweedfs/security.toml  SeaweedFS's JWT keys and gRPC mutual TLS (certificates in seaweedfs/tls/)
    run/<service>.pid      pid of each process `up` started (what `down` stops)
    logs/<service>.log     each service's output
    <service>/             each service's data (kept by `down`, removed by `make clean`)
"""

from __future__ import annotations

import secrets
import shutil
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from pydantic import SecretStr

from infrastructure import pushgateway, services
from infrastructure.services import SeaweedPorts, ServiceSpec, ServiceStartError
from infrastructure.settings import CREDENTIALS_FILE, Settings, read_env_file

RULES_DIR = Path(__file__).resolve().parents[1] / "monitoring" / "prometheus" / "rules"
PROMETHEUS_TEMPLATE = (
    Path(__file__).resolve().parents[1] / "monitoring" / "prometheus" / "prometheus.embedded.yml"
)


@dataclass(frozen=True)
class StackService:
    spec: ServiceSpec
    url: str

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class StackPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def credentials(self) -> Path:
        return self.root / CREDENTIALS_FILE

    @property
    def s3_identities(self) -> Path:
        return self.config / "s3-identities.json"

    @property
    def pushgateway_web_config(self) -> Path:
        return self.config / "pushgateway-web.yml"

    @property
    def pushgateway_password(self) -> Path:
        return self.config / "pushgateway.password"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"


# ---------------------------------------------------------------- service builders (pure)


def kafka_service(settings: Settings, paths: StackPaths) -> StackService:
    host, port = settings.stack.host, services.url_port(settings.kafka.bootstrap_servers)
    return StackService(services.broker_spec(paths.root / "kafka", host, port), f"{host}:{port}")


def seaweedfs_service(settings: Settings, paths: StackPaths) -> StackService:
    spec = services.seaweedfs_spec(
        paths.root / "seaweedfs",
        settings.stack.host,
        SeaweedPorts.from_settings(settings),
        paths.s3_identities,
        settings.s3.warehouse_bucket,
        _key_pair(settings),
    )
    return StackService(spec, f"S3 {settings.s3.endpoint}  catalog {settings.catalog.uri}")


def _pushgateway_auth(settings: Settings) -> tuple[str, str]:
    """The Pushgateway's (user, password); without a password (``status`` on a folder ``up`` never
    set up) an empty one, with which the readiness probe cannot pass: a running one reads unhealthy."""
    metrics = settings.metrics
    if metrics.pushgateway_password is None:
        return metrics.pushgateway_username, ""
    return metrics.pushgateway_auth()


def _key_pair(settings: Settings) -> tuple[str, str]:
    """The S3 key pair; none at all (``status`` on a folder ``up`` never set up) is an empty pair,
    with which the readiness probe cannot authenticate: a SeaweedFS found running reads unhealthy."""
    s3 = settings.s3
    if s3.access_key is None or s3.secret_key is None:
        return "", ""
    return s3.credentials()


def prometheus_service(settings: Settings, paths: StackPaths) -> StackService | None:
    """Prometheus when its binary is installed (``make setup`` installs the Debian package)."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    host, port = settings.stack.host, settings.stack.prometheus_port
    url = f"http://{host}:{port}"
    spec = ServiceSpec(
        name="prometheus",
        argv=(
            binary,
            f"--config.file={paths.config / 'prometheus.yml'}",
            f"--storage.tsdb.path={paths.root / 'prometheus'}",
            f"--web.listen-address={host}:{port}",
        ),
        log_file=paths.logs / "prometheus.log",
        cwd=paths.root / "prometheus",
        host=host,
        ready_ports=(port,),
        ready_probe=lambda: services.http_ok(f"{url}/-/ready"),
    )
    return StackService(spec, url)


def pushgateway_service(settings: Settings, paths: StackPaths) -> StackService | None:
    """The Pushgateway batch jobs push to (Debian ``prometheus-pushgateway``), when installed.

    It listens where ``metrics.pushgateway_url`` points, so jobs and Prometheus agree on one setting.
    Pushed metrics persist in the data folder (Debian's default file is the system-wide
    /var/lib/prometheus/pushgateway.data), so the last runs survive ``down``/``up``.
    """
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        return None
    host, port = settings.stack.host, services.url_port(settings.metrics.pushgateway_url)
    url = f"http://{host}:{port}"
    folder = paths.root / "pushgateway"
    auth = _pushgateway_auth(settings)
    spec = ServiceSpec(
        name="pushgateway",
        argv=(binary, f"--web.listen-address={host}:{port}", f"--persistence.file={folder / 'metrics.data'}",
              f"--web.config.file={paths.pushgateway_web_config}"),
        log_file=paths.logs / "pushgateway.log",
        cwd=folder,
        host=host,
        ready_ports=(port,),
        ready_probe=lambda: services.http_ok(f"{url}/-/ready", auth),
    )  # fmt: skip
    return StackService(spec, url)


# Order matters: services start in this order and stop in reverse.
SERVICE_BUILDERS: list[Callable[[Settings, StackPaths], StackService | None]] = [
    kafka_service,
    seaweedfs_service,
    prometheus_service,
    pushgateway_service,
]


def airflow_services(settings: Settings, log: Callable[[str], None] = lambda _: None) -> list[StackService]:
    """Airflow 3's four components (``lakehouse up --airflow``), one optional group after the rest."""
    from infrastructure import airflow_stack

    env = airflow_stack.component_env(settings, log)
    url = f"http://{settings.stack.host}:{settings.stack.airflow_port}"
    return [StackService(spec, url) for spec in airflow_stack.airflow_specs(settings, env)]


def prometheus_config(settings: Settings, template: str, password_file: Path) -> str:
    """The embedded Prometheus config: the template with this stack's metrics endpoints filled in
    (the Pushgateway scraped with its basic-auth user, the password read from ``password_file``)."""
    m = settings.metrics
    return string.Template(template).substitute(
        producer_target=f"{m.host}:{m.producer_port}",
        binance_producer_target=f"{m.host}:{m.binance_producer_port}",
        bronze_target=f"{m.host}:{m.bronze_port}",
        coingecko_producer_target=f"{m.host}:{m.coingecko_producer_port}",
        bronze_reference_target=f"{m.host}:{m.bronze_reference_port}",
        pushgateway_target=urlsplit(m.pushgateway_url).netloc,
        pushgateway_username=m.pushgateway_username,
        pushgateway_password_file=password_file,
        rules_dir=RULES_DIR,
    )


def write_monitoring_configs(settings: Settings, paths: StackPaths) -> None:
    """Prometheus's config and the Pushgateway's web config and password file (all 0600)."""
    pushgateway.write_auth_files(settings.metrics, paths.pushgateway_web_config, paths.pushgateway_password)
    if PROMETHEUS_TEMPLATE.is_file():
        services.write_private(
            paths.config / "prometheus.yml",
            prometheus_config(settings, PROMETHEUS_TEMPLATE.read_text(), paths.pushgateway_password),
        )


def stack_services(settings: Settings, airflow: bool | None = None) -> list[StackService]:
    """The stack's services; Airflow's too when ``airflow`` (None: if this stack has set Airflow up)."""
    from infrastructure.airflow_stack import is_set_up

    paths = StackPaths(settings.data_dir)
    found = [s for build in SERVICE_BUILDERS if (s := build(settings, paths)) is not None]
    if airflow or (airflow is None and is_set_up(settings)):
        found += airflow_services(settings)
    return found


def settings_on_free_ports(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a second stack beside a running one (tests, benchmarks): every port free,
    data under ``data_dir``, nothing read from ``.env`` and no credentials (``up`` generates them)."""
    seaweed = [services.free_port(grpc_too=True) for _ in range(7)]
    values: dict = {
        "data_dir": data_dir,
        "kafka": {"bootstrap_servers": f"127.0.0.1:{services.free_port()}"},
        "s3": {"endpoint": f"http://127.0.0.1:{seaweed[0]}"},
        "catalog": {"uri": f"http://127.0.0.1:{seaweed[1]}"},
        "stack": {
            "seaweed_master_port": seaweed[2],
            "seaweed_volume_port": seaweed[3],
            "seaweed_filer_port": seaweed[4],
            "seaweed_admin_port": seaweed[5],
            "seaweed_lance_port": seaweed[6],
            "prometheus_port": services.free_port(),
            "airflow_port": services.free_port(),
        },
        "metrics": {
            "producer_port": services.free_port(),
            "binance_producer_port": services.free_port(),
            "bronze_port": services.free_port(),
            "coingecko_producer_port": services.free_port(),
            "bronze_reference_port": services.free_port(),
            "pushgateway_url": f"http://127.0.0.1:{services.free_port()}",
            "dashboard_port": services.free_port(),
        },
    }
    return isolated_settings(values, overrides)


def isolated_settings(values: dict, overrides: dict) -> Settings:
    """Settings from ``values`` with ``overrides`` merged per section, nothing read from ``.env``."""
    merged = dict(values)
    for key, value in overrides.items():
        merged[key] = (
            {**merged[key], **value}
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return Settings(_env_file=None, **merged)


# ---------------------------------------------------------------- credentials


# the generated secrets: (section, field, variable in credentials.env, how to make a new one)
GENERATED: tuple[tuple[str, str, str, Callable[[], str]], ...] = (
    ("s3", "access_key", "LAKEHOUSE_S3__ACCESS_KEY", lambda: f"lakehouse{secrets.token_hex(6)}"),
    ("s3", "secret_key", "LAKEHOUSE_S3__SECRET_KEY", lambda: secrets.token_urlsafe(30)),
    ("metrics", "pushgateway_password", "LAKEHOUSE_METRICS__PUSHGATEWAY_PASSWORD",
     lambda: secrets.token_urlsafe(24)),
)  # fmt: skip


def ensure_credentials(settings: Settings) -> Settings:
    """Settings with every generated secret (S3 key pair, Pushgateway password): the configured one,
    else the generated file's, else a new one added to ``<data_dir>/credentials.env`` (0600).
    Only ``up`` (and what starts the stack) creates the file."""
    return _with_credentials(settings, generate=True)


def stored_credentials(settings: Settings) -> Settings:
    """Like :func:`ensure_credentials` but read-only: a secret neither configured nor in the file
    stays unset. For commands that must not change anything (``status``, ``down``)."""
    return _with_credentials(settings, generate=False)


def _with_credentials(settings: Settings, generate: bool) -> Settings:
    path = StackPaths(settings.data_dir).credentials
    stored = read_env_file(path)
    sections: dict[str, dict[str, SecretStr]] = {}
    added = False
    for section, name, variable, make in GENERATED:
        if getattr(getattr(settings, section), name) is not None:
            continue
        if not stored.get(variable):
            if not generate:
                continue
            stored[variable], added = make(), True
        sections.setdefault(section, {})[name] = SecretStr(stored[variable])
    if added:
        services.write_private(
            path,
            "# generated by `lakehouse up`: the embedded stack's credentials (S3 and catalog, Pushgateway)\n"
            + "".join(f"{variable}={value}\n" for variable, value in stored.items()),
        )
    updates = {section: getattr(settings, section).model_copy(update=v) for section, v in sections.items()}
    return settings.model_copy(update=updates) if updates else settings


# ---------------------------------------------------------------- up / down / status


@dataclass(frozen=True)
class ServiceState:
    name: str
    state: str  # healthy | unhealthy | down
    url: str
    pid: int | None
    # supervised workers (ingest, bronze writer) only
    restarts: int | None = None
    lag_messages: float | None = None
    freshness_s: float | None = None

    def detail(self) -> str:
        parts = [] if self.restarts is None else [f"restarts {self.restarts}"]
        if self.lag_messages is not None:
            parts.append(f"lag {self.lag_messages:.0f} msgs")
        if self.freshness_s is not None and self.freshness_s == self.freshness_s:  # not NaN
            parts.append(f"freshness {self.freshness_s:.1f} s")
        return "  ".join(parts)


def _pid_of(service: StackService, paths: StackPaths) -> int | None:
    """The pid in the service's pid file if that process is alive and is still this service."""
    try:
        pid = int(paths.pid_file(service.name).read_text().strip())
    except (OSError, ValueError):
        return None
    if not services.pid_alive(pid):
        return None
    try:  # a recycled pid belongs to some other program
        process = psutil.Process(pid)
        cmdline, created = process.cmdline(), process.create_time()
        written = paths.pid_file(service.name).stat().st_mtime
    except (psutil.Error, OSError):
        return None
    # Airflow's api-server renames itself ("airflow api_server -- host:..."), so a command line
    # that no longer matches still counts when the process is older than its pid file (a recycled
    # pid belongs to a process started after the file was written)
    return pid if cmdline[:1] == [service.spec.argv[0]] or created <= written else None


def _ready_now(spec: ServiceSpec) -> bool:
    return all(services.port_open(spec.host, p) for p in spec.ready_ports) and (
        spec.ready_probe is None or spec.ready_probe()
    )


def _prepare(settings: Settings, paths: StackPaths) -> None:
    for folder in (paths.config, paths.run, paths.logs):
        folder.mkdir(parents=True, exist_ok=True)
    paths.config.chmod(0o700)
    services.write_s3_identities(paths.s3_identities, *settings.s3.credentials())
    services.write_seaweed_security(paths.root / "seaweedfs")
    write_monitoring_configs(settings, paths)


def up(
    settings: Settings, log: Callable[[str], None] = lambda _: None, airflow: bool = False
) -> tuple[Settings, list[str]]:
    """Start whatever is not running; returns the settings (with credentials) and the names started.

    A service already running (live pid + ready) is left alone, so a second ``up`` does nothing.
    With ``airflow``, Airflow's components follow, after one ``db migrate`` if any must start.
    Raises ``ServiceStartError`` naming the service that did not come up, with its log tail, after
    stopping what this call had started (what was already running stays): a failed ``up`` leaves
    the machine as it found it.
    """
    settings = ensure_credentials(settings)
    paths = StackPaths(settings.data_dir)
    _prepare(settings, paths)
    started: list[StackService] = []
    try:
        _start(settings, paths, stack_services(settings, airflow=False), log, started)
        if airflow:
            from infrastructure import airflow_stack

            group = airflow_services(settings, log)
            if any(_pid_of(s, paths) is None for s in group):
                log("airflow: migrating the metadata DB and serializing the DAGs")
                airflow_stack.migrate(group[0].spec.env or {})
            _start(settings, paths, group, log, started)
    except BaseException:
        for service in reversed(started):
            pid = _pid_of(service, paths)
            if pid is not None:
                services.stop(pid)
                log(f"{service.name}: stopped (up failed)")
            paths.pid_file(service.name).unlink(missing_ok=True)
        raise
    return settings, [s.name for s in started]


def up_on_free_ports(
    data_dir: Path,
    log: Callable[[str], None] = lambda _: None,
    airflow: bool = False,
    attempts: int = 3,
    **overrides: object,
) -> Settings:
    """A whole stack beside any other (tests, benchmarks): ``up`` on free-picked ports, again on new
    ports when another program took one between the pick and the bind. Returns its settings."""
    for attempt in range(1, attempts + 1):
        settings = settings_on_free_ports(data_dir, **overrides)
        try:
            return up(settings, log, airflow=airflow)[0]
        except ServiceStartError as exc:
            if not exc.port_in_use or attempt == attempts:
                raise
            log(f"{exc.service}: a picked port was taken meanwhile; again on new ports")
    raise AssertionError("unreachable")


def _start(
    settings: Settings,
    paths: StackPaths,
    todo: list[StackService],
    log: Callable[[str], None],
    started: list[StackService],
) -> None:
    for service in todo:
        spec, pid = service.spec, _pid_of(service, paths)
        if pid is not None:
            services.wait_ready(spec, None, settings.stack.start_timeout_s)
            log(f"{service.name}: already running (pid {pid})")
            continue
        busy = [p for p in spec.ready_ports if services.port_open(spec.host, p)]
        if busy:
            raise ServiceStartError(
                service.name,
                f"port {busy[0]} on {spec.host} is already in use by another program "
                "(stop it or set another port, see .env.example)",
                None,
            )
        log(f"{service.name}: starting (log: {spec.log_file})")
        proc = services.start(spec)
        paths.pid_file(service.name).write_text(str(proc.pid))
        try:
            services.wait_ready(spec, proc, settings.stack.start_timeout_s)
        except ServiceStartError:
            services.stop(proc.pid)
            paths.pid_file(service.name).unlink(missing_ok=True)
            raise
        started.append(service)
        log(f"{service.name}: ready at {service.url}")


def down(settings: Settings, log: Callable[[str], None] = lambda _: None) -> list[str]:
    """Stop the processes ``up`` started (by pid file), newest first; data stays. Returns names stopped."""
    settings = stored_credentials(settings)
    paths = StackPaths(settings.data_dir)
    stopped = []
    for service in reversed(stack_services(settings)):
        pid = _pid_of(service, paths)
        if pid is not None:
            services.stop(pid)
            stopped.append(service.name)
            log(f"{service.name}: stopped (pid {pid})")
        paths.pid_file(service.name).unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> list[ServiceState]:
    """Each service's state, read-only: nothing is written (no credentials, no pid files)."""
    settings = stored_credentials(settings)
    paths = StackPaths(settings.data_dir)
    states = []
    for service in stack_services(settings):
        pid = _pid_of(service, paths)
        state = "down" if pid is None else "healthy" if _ready_now(service.spec) else "unhealthy"
        states.append(ServiceState(service.name, state, service.url, pid))
    return states + worker_states(settings)


def worker_states(settings: Settings) -> list[ServiceState]:
    """Ingest and the bronze writer when a watchdog runs them (``lakehouse demo``): healthy while the
    worker runs, unhealthy between restarts, down once its watchdog is gone; with restarts, and the
    writer's lag and freshness from its metrics endpoint."""
    from infrastructure.watchdog import read_state, state_file

    m = settings.metrics
    bronze_metrics = f"http://{m.host}:{m.bronze_port}/metrics"
    found = []
    for name, url in (("ingest", f"http://{m.host}:{m.producer_port}/metrics"), ("bronze", bronze_metrics)):
        data = read_state(state_file(StackPaths(settings.data_dir).run, name))
        if data is None:
            continue
        alive = services.pid_alive(int(data["pid"]))
        child = data.get("child_pid")
        running = alive and child is not None and services.pid_alive(int(child))
        state = "healthy" if running else "unhealthy" if alive else "down"
        lag = fresh = None
        if name == "bronze" and running:
            lag = services.scrape_gauge(bronze_metrics, "lakehouse_bronze_consumer_lag_messages")
            fresh = services.scrape_gauge(bronze_metrics, "lakehouse_bronze_freshness_seconds")
        found.append(
            ServiceState(name, state, url, data["pid"] if alive else None, int(data["restarts"]), lag, fresh)
        )
    return found
