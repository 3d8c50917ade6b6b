"""The Airflow client: trigger and follow DAG runs through the embedded Airflow's REST API.

The token comes from the stack's generated admin password (``<data_dir>/airflow/secrets.json``).
A run of ``crypto_hourly`` for hour H is triggered with the explicit data interval ``[H, H+1)``:
left to itself, Airflow infers a manual run's interval as the last *complete* hour before its
logical date, i.e. the hour before H. The logical date is the trigger time, not H, so the
scheduled run for H (logical date H) can still be created when the hour is over.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from infrastructure.settings import Settings

POLL_S = 2.0
FINISHED = frozenset({"success", "failed"})


class AirflowApiError(RuntimeError):
    pass


@dataclass(frozen=True)
class AirflowClient:
    base: str
    token: str

    @classmethod
    def login(cls, settings: Settings) -> AirflowClient:
        from infrastructure.airflow_stack import ADMIN_USER, airflow_home, ensure_secrets, is_set_up

        if not is_set_up(settings):
            raise AirflowApiError("Airflow is not set up in this stack: run `lakehouse up --airflow` first")
        keys, _ = ensure_secrets(airflow_home(settings))
        base = f"http://{settings.stack.host}:{settings.stack.airflow_port}"
        body = {"username": ADMIN_USER, "password": keys.admin_password}
        token = _call("POST", f"{base}/auth/token", body)["access_token"]
        return cls(base, token)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        return _call(method, f"{self.base}/api/v2{path}", body, self.token)

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None, hour: datetime | None = None) -> str:
        """Start a run (unpausing the DAG: a paused DAG's runs stay queued); returns the run id."""
        self.unpause(dag_id)
        now = datetime.now(UTC)
        body: dict = {"logical_date": now.isoformat(), "conf": conf or {}}
        if hour is not None:
            start = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            body["data_interval_start"] = start.isoformat()
            body["data_interval_end"] = (start + timedelta(hours=1)).isoformat()
        return self.request("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        found = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {t["task_id"]: t["state"] for t in found}

    def wait(self, dag_id: str, run_id: str, timeout_s: float, on_change=lambda _: None) -> str:
        """Poll until the run finishes or ``timeout_s`` passes; returns its last state."""
        deadline, seen, state = time.monotonic() + timeout_s, None, "queued"
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            tasks = self.task_states(dag_id, run_id)
            if tasks != seen:
                on_change(tasks)
                seen = tasks
            if state in FINISHED:
                return state
            time.sleep(POLL_S)
        return state


def _call(method: str, url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise AirflowApiError(f"{method} {url}: HTTP {exc.code}: {exc.read().decode()[:500]}") from None
    except OSError as exc:
        raise AirflowApiError(f"{method} {url}: {exc} (is Airflow up? `lakehouse up --airflow`)") from None
