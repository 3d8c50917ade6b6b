"""The environment compose hands to this project's containers loads through the one Settings class.

pydantic ignores unknown top-level variables, so a misspelt ``LAKEHOUSE_...`` name would be dropped
silently: every name is also compared with ``env_variables()``, the list of real settings.
"""

from __future__ import annotations

import os

import pytest

from infrastructure.settings import ENV_PREFIX, Settings, env_variables
from tests.fixtures.compose import ComposeStack, environment_of

KNOWN = {name for name, _, _ in env_variables()}


def project_services(stack: ComposeStack) -> dict[str, dict]:
    """Services running this project's code: the ones built from this repository with it inside
    (the build context is the repository; Grafana's image is built only to carry a plugin)."""
    return {name: s for name, s in stack.services.items() if s.get("build", {}).get("context") == "."}


def container_env(stack: ComposeStack, service: dict) -> dict[str, str]:
    """What the container sees: env_file (.env, here a copy of .env.example) under `environment:`."""
    assert service.get("env_file") in (".env", [".env"]), "project containers read the user's .env"
    return {**stack.env, **environment_of(service)}


def test_project_services_are_the_expected_ones(compose_stack: ComposeStack) -> None:
    assert {
        "coinbase-producer",
        "lakehouse-init",
        "spark-streaming",
        "airflow-scheduler",
    } <= set(project_services(compose_stack))


@pytest.mark.parametrize(
    "name",
    [
        "coinbase-producer", "binance-producer", "coingecko-producer", "lakehouse-init", "spark-streaming", "airflow-init",
        "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
    ],
)  # fmt: skip
def test_service_environment_is_valid_settings(
    compose_stack: ComposeStack, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(compose_stack, compose_stack.services[name])
    ours = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    unknown = set(ours) - KNOWN
    assert not unknown, f"{name}: not settings (typo?): {sorted(unknown)}"

    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in ours.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)

    # the in-network addresses, not the embedded stack's 127.0.0.1 defaults
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.s3.endpoint == "http://seaweedfs:8333"
    assert settings.catalog.uri.startswith("http://nessie:19120/iceberg")
    assert settings.catalog.auth == "none"  # Nessie here has no OAuth2 token endpoint
    assert settings.engine.processing == "spark" and settings.engine.query == "trino"
    assert settings.trino.host == "trino"
    assert str(settings.data_dir) == "/data"
    # storage credentials arrive from .env and are usable
    assert all(settings.s3.credentials())


def test_a_misspelt_variable_is_caught(compose_stack: ComposeStack) -> None:
    # the guard above is only worth something if it notices a typo pydantic would ignore
    env = {**container_env(compose_stack, compose_stack.services["coinbase-producer"])}
    env["LAKEHOUSE_KAFKA_BOOTSTRAP_SERVERS"] = "kafka:9092"  # single underscore
    assert {k for k in env if k.startswith(ENV_PREFIX)} - KNOWN == {"LAKEHOUSE_KAFKA_BOOTSTRAP_SERVERS"}
