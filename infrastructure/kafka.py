"""The Kafka seam: every client configuration (producer, consumer, admin) is built here from settings.

One place knows how to reach and authenticate to the broker, so a user who turns on SASL or TLS
(``LAKEHOUSE_KAFKA__SECURITY_PROTOCOL`` and friends) changes settings, not code. Each builder takes
the role's own options as keyword overrides on top of the connection part.

librdkafka's log lines go to the Python logger :data:`KAFKA_LOGGER` (not straight to stderr), so
an entry point decides what a person sees: the CLI keeps them out of the terminal unless
``--debug``, since an unreachable broker makes librdkafka repeat a line per retry.
"""

from __future__ import annotations

import json
import logging

from infrastructure.settings import KafkaSettings

KAFKA_LOGGER = "librdkafka"


def client_config(kafka: KafkaSettings) -> dict[str, object]:
    """Where the broker is and how to authenticate: the part every client shares."""
    config: dict[str, object] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.startswith("SASL"):
        username, password = kafka.sasl_credentials()
        config |= {
            "sasl.mechanism": kafka.sasl_mechanism,
            "sasl.username": username,
            "sasl.password": password,
        }
    if kafka.ssl_ca_location is not None:
        config["ssl.ca.location"] = str(kafka.ssl_ca_location)
    return config


def producer_config(kafka: KafkaSettings, **overrides: object) -> dict[str, object]:
    """An idempotent producer (no duplicates or reordering on retry) with the pipeline's batching."""
    return {
        **client_config(kafka),
        **_logged(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": kafka.producer_linger_ms,
        "queue.buffering.max.messages": kafka.producer_queue_max_messages,
        "message.max.bytes": kafka.max_message_bytes,
        "message.timeout.ms": kafka.producer_message_timeout_ms,
        "compression.type": kafka.producer_compression,
        **overrides,
    }


def consumer_config(kafka: KafkaSettings, group_id: str, **overrides: object) -> dict[str, object]:
    """A consumer in ``group_id`` that commits nothing by itself (callers decide when data is durable)."""
    return {
        **client_config(kafka),
        **_logged(),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        **overrides,
    }


def admin_config(kafka: KafkaSettings) -> dict[str, object]:
    return {**client_config(kafka), **_logged()}


def _logged() -> dict[str, object]:
    """librdkafka clients log through :data:`KAFKA_LOGGER`, where the entry point decides what shows."""
    return {"logger": logging.getLogger(KAFKA_LOGGER)}


def java_client_config(kafka: KafkaSettings) -> dict[str, str]:
    """The same connection for a JVM client (Spark's Kafka source and sink take these as ``kafka.*``
    options): Java's names for SASL credentials and a PEM CA bundle differ from librdkafka's."""
    config = {"bootstrap.servers": kafka.bootstrap_servers, "security.protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL"):
        username, password = kafka.sasl_credentials()
        module = (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if kafka.sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )
        config["sasl.mechanism"] = kafka.sasl_mechanism
        # JSON string quoting is the JAAS line's: a quote in a password cannot end the value
        config["sasl.jaas.config"] = (
            f"{module} required username={json.dumps(username)} password={json.dumps(password)};"
        )
    if kafka.ssl_ca_location is not None:
        config |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": str(kafka.ssl_ca_location)}
    return config


def spark_kafka_options(kafka: KafkaSettings) -> dict[str, str]:
    """``java_client_config`` as options of Spark's Kafka source/sink (each key prefixed ``kafka.``)."""
    return {f"kafka.{key}": value for key, value in java_client_config(kafka).items()}
