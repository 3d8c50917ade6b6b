"""The Kafka seam: the connection and security part of every client config, built from settings.

Producers, consumers and admin clients start from :func:`client_config` and add their own keys, so
a broker that requires SASL (the compose stack's) is reached the same way by all of them.
"""

from __future__ import annotations

from infrastructure.settings import KafkaSettings, MissingSetting


def client_config(kafka: KafkaSettings) -> dict:
    """``bootstrap.servers`` plus ``security.protocol`` and, for SASL, the mechanism and login."""
    config: dict = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.startswith("SASL"):
        if kafka.sasl_username is None or kafka.sasl_password is None:
            raise MissingSetting(
                "LAKEHOUSE_KAFKA__SASL_USERNAME and LAKEHOUSE_KAFKA__SASL_PASSWORD",
                f"the broker is reached over {kafka.security_protocol}",
            )
        config |= {
            "sasl.mechanism": kafka.sasl_mechanism,
            "sasl.username": kafka.sasl_username,
            "sasl.password": kafka.sasl_password.get_secret_value(),
        }
    return config
