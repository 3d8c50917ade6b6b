"""The compose stack's storage, broker and ops endpoints need credentials, as the embedded stack's do:
Kafka SASL/PLAIN on every client listener with every client logged in, the Pushgateway behind basic
auth (pushers and Prometheus's scrape included), SeaweedFS with JWT keys and no master/filer HTTP."""

from __future__ import annotations

import yaml

from infrastructure.kafka import client_config
from infrastructure.settings import KafkaSettings
from tests.fixtures.compose import ROOT, ComposeStack, environment_of
from tests.unit.test_compose_env import container_env, project_services

PROMETHEUS = ROOT / "monitoring/prometheus/prometheus.compose.yml"
SEAWEED_START = ROOT / "infrastructure/docker/seaweedfs/start.sh"


def kafka_password(stack: ComposeStack) -> str:
    return stack.env["KAFKA_SASL_PASSWORD"]


def test_every_kafka_client_listener_requires_sasl_plain(compose_stack: ComposeStack) -> None:
    env = environment_of(compose_stack.services["kafka"])
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
    clients = listeners - {env["KAFKA_CONTROLLER_LISTENER_NAMES"]}
    assert {name: protocols[name] for name in clients} == {name: "SASL_PLAINTEXT" for name in clients}
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    password = kafka_password(compose_stack)
    for name in clients:
        jaas = env[f"KAFKA_LISTENER_NAME_{name}_PLAIN_SASL_JAAS_CONFIG"]
        assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required")
        assert f'user_lakehouse="{password}"' in jaas and jaas.endswith(";")


def test_every_project_container_logs_in_to_kafka(compose_stack: ComposeStack) -> None:
    for name, service in project_services(compose_stack).items():
        env = container_env(compose_stack, service)
        kafka = KafkaSettings.model_validate(
            {
                key.removeprefix("LAKEHOUSE_KAFKA__").lower(): value
                for key, value in env.items()
                if key.startswith("LAKEHOUSE_KAFKA__")
            }
        )
        config = client_config(kafka)
        assert config["security.protocol"] == "SASL_PLAINTEXT", name
        assert (config["sasl.username"], config["sasl.password"]) == (
            "lakehouse",
            kafka_password(compose_stack),
        ), name


def test_the_pushgateway_requires_basic_auth_and_prometheus_scrapes_with_it(
    compose_stack: ComposeStack,
) -> None:
    gateway = compose_stack.services["pushgateway"]
    assert "--web.config.file=/auth/web.yml" in gateway["command"]
    assert "pushgateway-auth:/auth:ro" in gateway["volumes"]
    assert gateway["depends_on"]["lakehouse-init"]["condition"] == "service_completed_successfully"
    # the health check logs in too (the password from the gateway's own environment)
    assert (
        "http://lakehouse:$${PUSHGATEWAY_PASSWORD}@"
        in compose_stack.raw["services"]["pushgateway"]["healthcheck"]["test"][1]
    )
    init = compose_stack.services["lakehouse-init"]
    assert "python -m infrastructure.pushgateway /auth" in " ".join(init["entrypoint"])
    assert "pushgateway-auth:/auth" in init["volumes"]

    scrape = next(
        job
        for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
        if job["job_name"] == "pushgateway"
    )
    assert scrape["basic_auth"] == {
        "username": "lakehouse",
        "password_file": "/etc/prometheus/pushgateway/password",
    }
    assert (
        "pushgateway-auth:/etc/prometheus/pushgateway:ro" in compose_stack.services["prometheus"]["volumes"]
    )

    # every pusher has the password the gateway is configured with
    password = compose_stack.env["LAKEHOUSE_METRICS__PUSHGATEWAY_PASSWORD"]
    for name, service in project_services(compose_stack).items():
        assert container_env(compose_stack, service)["LAKEHOUSE_METRICS__PUSHGATEWAY_PASSWORD"] == password, (
            name
        )


def test_seaweedfs_requires_jwts_and_serves_no_master_or_filer_http(compose_stack: ComposeStack) -> None:
    env = environment_of(compose_stack.services["seaweedfs"])
    keys = {
        name: env[name]
        for name in (
            "WEED_JWT_SIGNING_KEY",
            "WEED_JWT_SIGNING_READ_KEY",
            "WEED_JWT_FILER_SIGNING_KEY",
            "WEED_JWT_FILER_SIGNING_READ_KEY",
        )
    }
    assert all(keys.values()) and keys["WEED_JWT_SIGNING_KEY"] != keys["WEED_JWT_SIGNING_READ_KEY"]
    assert "-disableHttp" in SEAWEED_START.read_text()
    # only S3 is published to the host: master, volume, filer and gRPC stay on the compose network
    assert [p.rsplit(":", 1)[1] for p in compose_stack.services["seaweedfs"]["ports"]] == ["8333"]
