"""Airflow 3's four components run on 127.0.0.1 from the stack's specs, with a generated admin password."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from infrastructure import airflow_stack, services
from infrastructure.settings import Settings
from tests.fixtures.services import listeners_of


@pytest.fixture(scope="module")
def running_airflow(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("stack")
    settings = Settings(_env_file=None, data_dir=data_dir, stack={"airflow_port": services.free_port()})
    home = airflow_stack.airflow_home(settings)
    keys, created = airflow_stack.ensure_secrets(home)
    assert created and airflow_stack.ensure_secrets(home) == (keys, False)
    env = airflow_stack.airflow_env(settings, home, keys)
    airflow_stack.migrate(env)
    started = [(spec, services.start(spec)) for spec in airflow_stack.airflow_specs(settings, env)]
    try:
        for spec, proc in started:
            services.wait_ready(spec, proc, timeout_s=180)
        yield settings, keys, [proc.pid for _, proc in started]
    finally:
        for _, proc in started:
            services.stop(proc.pid)


def _token(settings: Settings, username: str, password: str) -> str:
    request = urllib.request.Request(
        f"http://{settings.stack.host}:{settings.stack.airflow_port}/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def test_every_component_reports_healthy(running_airflow) -> None:
    settings, _, _ = running_airflow
    health = airflow_stack.health(settings)
    assert {k: v["status"] for k, v in health.items()} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }


def test_generated_password_works_and_default_is_refused(running_airflow) -> None:
    settings, keys, _ = running_airflow
    token = _token(settings, "admin", keys.admin_password)
    request = urllib.request.Request(
        f"http://{settings.stack.host}:{settings.stack.airflow_port}/api/v2/dags",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        dag_ids = {d["dag_id"] for d in json.load(response)["dags"]}
    assert dag_ids == {"crypto_hourly", "crypto_maintenance", "crypto_backfill"}
    with pytest.raises(urllib.error.HTTPError) as refused:
        _token(settings, "admin", "admin")
    assert refused.value.code in (401, 403)


def test_the_components_listen_only_on_the_api_port(running_airflow) -> None:
    """No log server, health server or worker socket: the scheduler and triggerer skip their log
    servers, the dag-processor has none, and the api-server binds the configured host and port."""
    settings, _, pids = running_airflow
    listening = set().union(*(listeners_of(pid) for pid in pids))
    assert listening == {(settings.stack.host, settings.stack.airflow_port)}
