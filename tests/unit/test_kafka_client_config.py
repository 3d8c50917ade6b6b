"""The Kafka seam's connection part: plaintext by default, SASL login when configured, and a clear
error naming the variables when SASL is asked for without them."""

from __future__ import annotations

import pytest

from infrastructure.kafka import client_config
from infrastructure.settings import KafkaSettings, MissingSetting


def test_plaintext_by_default() -> None:
    assert client_config(KafkaSettings(bootstrap_servers="127.0.0.1:1")) == {
        "bootstrap.servers": "127.0.0.1:1",
        "security.protocol": "PLAINTEXT",
    }


def test_sasl_login_from_settings() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="kafka:9092",
        security_protocol="SASL_PLAINTEXT",
        sasl_username="lakehouse",
        sasl_password="s3cret",
    )
    assert client_config(kafka) == {
        "bootstrap.servers": "kafka:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "lakehouse",
        "sasl.password": "s3cret",
    }
    assert "s3cret" not in repr(kafka)


def test_sasl_without_a_login_names_the_variables() -> None:
    with pytest.raises(
        MissingSetting, match="LAKEHOUSE_KAFKA__SASL_USERNAME and LAKEHOUSE_KAFKA__SASL_PASSWORD"
    ):
        client_config(KafkaSettings(security_protocol="SASL_PLAINTEXT"))


def test_spark_gets_the_same_login_as_a_jaas_line() -> None:
    from infrastructure.kafka import spark_kafka_options as kafka_options

    assert kafka_options(KafkaSettings(bootstrap_servers="kafka:9092")) == {
        "kafka.bootstrap.servers": "kafka:9092",
        "kafka.security.protocol": "PLAINTEXT",
    }
    sasl = KafkaSettings(
        bootstrap_servers="kafka:9092",
        security_protocol="SASL_PLAINTEXT",
        sasl_username="u",
        sasl_password="p",
    )
    assert kafka_options(sasl) == {
        "kafka.bootstrap.servers": "kafka:9092",
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": "PLAIN",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";',
    }
