"""Idempotent bootstrap shared by both stacks: Kafka topics, Iceberg namespaces and tables.

Running it again changes nothing: existing topics and tables are left as they are (a table whose
schema differs from its contract is reported, not altered).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from infrastructure.kafka import admin_config
from infrastructure.settings import KafkaSettings
from infrastructure.tables import NAMESPACES, TABLES, TableDef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicDef:
    name: str
    partitions: int
    config: dict[str, str]


def topic_defs(kafka: KafkaSettings) -> tuple[TopicDef, ...]:
    """The topics the pipeline needs; the DLQ has one partition (order across products is irrelevant)."""
    return (
        TopicDef(kafka.trades_topic, kafka.partitions, {"retention.ms": str(kafka.retention_ms)}),
        TopicDef(kafka.dlq_topic, 1, {"retention.ms": str(kafka.dlq_retention_ms)}),
    )


def check_broker(kafka: KafkaSettings, timeout_s: float = 5.0) -> None:
    """Fail fast, once, if no broker answers at ``kafka.bootstrap_servers`` (``ConnectionError``
    naming it), rather than letting each client retry for its whole timeout."""
    from confluent_kafka import KafkaException

    try:
        AdminClient(admin_config(kafka)).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ConnectionError(
            f"Kafka at {kafka.bootstrap_servers} not reachable within {timeout_s:g} s: {exc.args[0].str()}"
        ) from None


def ensure_topics(kafka: KafkaSettings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; return the names created."""
    admin = AdminClient(admin_config(kafka))
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [t for t in topic_defs(kafka) if t.name not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(t.name, t.partitions, kafka.replication_factor, config=t.config) for t in wanted],
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except Exception as exc:  # a concurrent init may have created it meanwhile
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created


def ensure_tables(catalog: Catalog, tables: tuple[TableDef, ...] = TABLES) -> list[str]:
    """Create missing namespaces and tables; return the identifiers of tables created."""
    for namespace in NAMESPACES:
        catalog.create_namespace_if_not_exists(namespace)
    created = []
    for table in tables:
        try:
            existing = catalog.load_table(table.identifier)
        except NoSuchTableError:
            catalog.create_table(
                table.identifier,
                schema=table.schema,
                partition_spec=table.partition_spec,
                sort_order=table.sort_order,
                properties=table.properties,
            )
            created.append(table.identifier)
            continue
        if existing.schema().as_struct() != table.schema.as_struct():
            log.warning(
                "%s exists with a schema that differs from its contract; left unchanged", table.identifier
            )
    return created
