"""Airflow 3 in the embedded stack: four components on 127.0.0.1 sharing one home under the data dir.

``airflow standalone`` would bind its log servers to every interface and start 32 workers, so the
components are started one by one: api-server (one worker), scheduler and triggerer without their
log servers, and the dag-processor, with low parallelism. The metadata DB is SQLite in the home.

Secrets (the JWT key the components share, the API secret key, the admin password) are generated
on first start into ``<home>/secrets.json`` (mode 0600); the admin password is printed once. The
simple auth manager's users are ``admin`` (role admin); there is no admin/admin.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from infrastructure.services import ServiceSpec, venv_bin
from infrastructure.settings import CREDENTIALS_FILE, Settings, to_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO_ROOT / "orchestration" / "dags"
ADMIN_USER = "admin"
# component -> the key /api/v2/monitor/health reports it under
COMPONENTS = {
    "airflow-apiserver": "metadatabase",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag_processor",
    "airflow-triggerer": "triggerer",
}


@dataclass(frozen=True)
class AirflowSecrets:
    jwt_secret: str
    api_secret_key: str
    admin_password: str


def airflow_home(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "airflow"


def ensure_secrets(home: Path) -> tuple[AirflowSecrets, bool]:
    """Load the stack's Airflow secrets, generating them the first time; returns (secrets, created)."""
    path = home / "secrets.json"
    if path.is_file():
        return AirflowSecrets(**json.loads(path.read_text())), False
    home.mkdir(parents=True, exist_ok=True)
    created = AirflowSecrets(
        jwt_secret=secrets.token_urlsafe(32),
        api_secret_key=secrets.token_urlsafe(32),
        admin_password=secrets.token_urlsafe(12),
    )
    path.write_text(json.dumps(created.__dict__))
    path.chmod(0o600)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({ADMIN_USER: created.admin_password}))
    passwords.chmod(0o600)
    return created, True


def stack_start_date(settings: Settings, home: Path) -> datetime:
    """The first hour of the stack's hourly schedule (both stacks), persisted in ``<home>/start_date``.

    It is the hour the stack's data dir was first set up (its generated credentials file, else
    now), so catch-up covers the stack's own history, not months back (in compose, unpausing
    ``crypto_hourly`` would otherwise queue a run per hour since a fixed date). An explicitly
    configured ``LAKEHOUSE_ORCHESTRATION__START_DATE`` wins: that is how to backfill on purpose.
    """
    if settings.orchestration.start_date is not None:
        return settings.orchestration.start_date
    path = home / "start_date"
    if path.is_file():
        return datetime.fromisoformat(path.read_text().strip())
    credentials = settings.data_dir / CREDENTIALS_FILE
    born = datetime.fromtimestamp(credentials.stat().st_mtime, UTC) if credentials.is_file() else None
    first = min(filter(None, (born, datetime.now(UTC))))
    start = first.replace(minute=0, second=0, microsecond=0)
    home.mkdir(parents=True, exist_ok=True)
    # compose parses DAGs in several containers at once: the first complete write wins
    staged = home / f".start_date.{os.getpid()}"
    staged.write_text(start.isoformat() + "\n")
    try:
        os.link(staged, path)
    except FileExistsError:
        start = datetime.fromisoformat(path.read_text().strip())
    finally:
        staged.unlink()
    return start


def with_start_date(settings: Settings, start: datetime) -> Settings:
    orchestration = settings.orchestration.model_copy(update={"start_date": start})
    return settings.model_copy(update={"orchestration": orchestration})


def airflow_env(settings: Settings, home: Path, keys: AirflowSecrets) -> dict[str, str]:
    """Environment for every Airflow process (Airflow's own config is environment-driven too).

    The lakehouse settings travel as ``LAKEHOUSE_*`` variables (credentials included: this goes to
    the children's environment only), so the tasks reach the same services whatever the
    components' working directory, ``.env`` or ports.
    """
    settings = with_start_date(settings, stack_start_date(settings, home))
    api = f"http://{settings.stack.host}:{settings.stack.airflow_port}"
    return {
        **to_environment(settings),
        "AIRFLOW_HOME": str(home),
        # DAGs and task bodies import this checkout's packages, whatever is installed
        "PYTHONPATH": str(REPO_ROOT),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__HOST": settings.stack.host,
        "AIRFLOW__API__PORT": str(settings.stack.airflow_port),
        "AIRFLOW__API__SECRET_KEY": keys.api_secret_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": keys.jwt_secret,
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # the lakehouse settings the DAGs read: same data dir (credentials), first hour of the schedule
        "LAKEHOUSE_DATA_DIR": str(settings.data_dir.resolve()),
        "LAKEHOUSE_ORCHESTRATION__START_DATE": settings.orchestration.start_date.isoformat(),
    }


def health(settings: Settings) -> dict:
    """``/api/v2/monitor/health`` as a dict ({} when the api-server does not answer)."""
    url = f"http://{settings.stack.host}:{settings.stack.airflow_port}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.load(response)
    except (OSError, ValueError):
        return {}


def component_healthy(settings: Settings, key: str) -> bool:
    return health(settings).get(key, {}).get("status") == "healthy"


def airflow_specs(settings: Settings, env: dict[str, str]) -> list[ServiceSpec]:
    home = Path(env["AIRFLOW_HOME"])
    airflow = venv_bin("airflow")
    commands = {
        "airflow-apiserver": (airflow, "api-server", "-H", settings.stack.host,
                              "-p", str(settings.stack.airflow_port), "-w", "1"),
        "airflow-scheduler": (airflow, "scheduler", "--skip-serve-logs"),
        "airflow-dag-processor": (airflow, "dag-processor"),
        "airflow-triggerer": (airflow, "triggerer", "--skip-serve-logs"),
    }  # fmt: skip
    return [
        ServiceSpec(
            name=name,
            argv=argv,
            log_file=settings.data_dir.resolve() / "logs" / f"{name}.log",
            cwd=home,
            host=settings.stack.host,
            # only the api-server owns the port (the supervisor refuses to start a service whose
            # port is taken); the others are ready when the api-server's health says so
            ready_ports=(settings.stack.airflow_port,) if name == "airflow-apiserver" else (),
            ready_probe=lambda key=COMPONENTS[name]: component_healthy(settings, key),
            env=env,
        )
        for name, argv in commands.items()
    ]


def migrate(env: dict[str, str]) -> None:
    """Create or upgrade the metadata DB and serialize the DAGs (a fresh DB lists none until then)."""
    airflow = venv_bin("airflow")
    for args in (("db", "migrate"), ("dags", "reserialize")):
        subprocess.run(
            (airflow, *args), env={**os.environ, **env}, check=True, capture_output=True, timeout=300
        )


def component_env(settings: Settings, log: Callable[[str], None] = lambda _: None) -> dict[str, str]:
    """The components' environment: secrets (generated the first time, when the admin password is
    logged, once) and the stack's start date."""
    home = airflow_home(settings)
    keys, created = ensure_secrets(home)
    if created:
        log(
            f"airflow: admin password generated (shown once): user {ADMIN_USER} password "
            f"{keys.admin_password}  UI http://{settings.stack.host}:{settings.stack.airflow_port}"
            f"  (kept in {home / 'passwords.json'}, mode 0600)"
        )
    return airflow_env(settings, home, keys)


def is_set_up(settings: Settings) -> bool:
    return (airflow_home(settings) / "secrets.json").is_file()
