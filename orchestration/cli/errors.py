"""The CLI's one error boundary: an exception from any command becomes ONE line a person can act on.

The line names what failed, where (the URL, host:port or file) and the command that fixes it, e.g.
``error: catalog at http://127.0.0.1:8181 is not reachable: start the stack with `lakehouse up```.
:func:`describe` is pure (exception and settings in, text out); ``main()`` prints it and exits 1.
Usage errors are click's (exit 2) and never get here; ``--debug`` shows the traceback instead.

A service is recognised by the address in the error's text (or its cause chain) matched against the
settings' endpoints, so one rule covers pyiceberg, DuckDB, pyarrow, urllib and confluent-kafka.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from infrastructure.settings import MissingSetting, Settings

UP = "start the stack with `lakehouse up`"
# words the clients use when nothing answers at an address
UNREACHABLE = re.compile(
    r"connection refused|could not connect|failed to establish|couldn't connect|"
    r"network_connection|timed out|name or service not known|all broker|transport|"
    r"connection reset|unreachable|not reachable|no route to host|connect to ipv4",
    re.IGNORECASE,
)
REFUSED_TOKEN = re.compile(r"unauthori[sz]ed|forbidden|invalid_client|oauth|401|403|access denied", re.I)


@dataclass(frozen=True)
class Service:
    name: str
    where: str  # as the user configured it (URL or host:port)
    fix: str

    @property
    def netlocs(self) -> set[str]:
        found = set()
        for address in self.where.split(","):
            address = address.strip()
            netloc = urlsplit(address).netloc if "//" in address else address
            if netloc:
                found.add(netloc.lower().replace("localhost", "127.0.0.1"))
        return found


def services(settings: Settings) -> list[Service]:
    host = settings.stack.host
    return [
        Service("catalog", settings.catalog.uri, UP),
        Service("S3", settings.s3.endpoint, UP),
        Service("Kafka", settings.kafka.bootstrap_servers, UP),
        Service("Pushgateway", settings.metrics.pushgateway_url, UP),
        Service(
            "Airflow",
            f"http://{host}:{settings.stack.airflow_port}",
            "start it with `lakehouse up --airflow`",
        ),
        Service("Prometheus", f"http://{host}:{settings.stack.prometheus_port}", UP),
    ]


def chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


_HOST_PORT = re.compile(r"host='([^']+)', port=(\d+)")  # how urllib3 names an address


def _text(exc: BaseException) -> str:
    return _HOST_PORT.sub(r"\1:\2", " | ".join(str(e) for e in chain(exc)))


def _service_in(text: str, settings: Settings) -> Service | None:
    lowered = text.lower().replace("localhost", "127.0.0.1")
    for service in services(settings):
        if any(netloc in lowered for netloc in service.netlocs):
            return service
    return None


def describe(exc: BaseException, settings: Settings | None) -> str:
    """The one line for ``exc`` (without the ``error: `` prefix)."""
    for e in chain(exc):
        if isinstance(e, MissingSetting):
            return f"{e} (set it in the environment or .env)"
    text = _text(exc)
    kind = type(exc).__name__
    if kind in ("NoSuchTableError", "NoSuchNamespaceError"):  # the catalog answered: no such name
        where = f"catalog at {settings.catalog.uri}: " if settings is not None else ""
        return f"{where}{first_line(exc)}: check the name (`lakehouse init` creates the pipeline's tables)"
    if settings is not None:
        service = _service_in(text, settings)
        if service is None and kind == "KafkaException":
            service = next(s for s in services(settings) if s.name == "Kafka")
        if service is not None:
            if UNREACHABLE.search(text):
                return f"{service.name} at {service.where} is not reachable: {service.fix}"
            if service.name == "catalog" and REFUSED_TOKEN.search(text):
                return (
                    f"catalog at {service.where} refused the credentials ({first_line(exc)}): set "
                    "LAKEHOUSE_S3__ACCESS_KEY/SECRET_KEY (or LAKEHOUSE_CATALOG__CREDENTIAL) to the stack's "
                    f"key pair, which `lakehouse up` keeps in {settings.data_dir / 'credentials.env'}"
                )
            return f"{service.name} at {service.where}: {first_line(exc)}"
    if kind == "AirflowApiError":  # its own message already names the URL or the fix
        return first_line(exc)
    if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb"):
        return f"DuckDB: {first_line(exc)}"
    if isinstance(exc, ValueError) and str(exc).startswith("invalid settings"):
        return f"{first_line(exc)} (fix it in the environment or .env; `lakehouse settings` shows them)"
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return f"{exc.strerror}: {exc.filename}"
    return f"{kind}: {first_line(exc)} (run with --debug for the traceback)"
