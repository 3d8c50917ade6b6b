"""Idempotent bootstrap shared by both stacks: Kafka topics, Iceberg namespaces and tables.

Running it again changes nothing: existing topics are left as they are, and an existing table is
brought to its contract by ``infrastructure/migrations.py`` (compatible changes applied in place;
an incompatible one refused with the column and why, no table touched). ``lakehouse init`` fails
on a refusal; the jobs that bootstrap on the way in (gold, the demo, benchmarks) log it and go on,
as they did before migrations existed: a drift they do not read must not stop the hourly run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from infrastructure.kafka import admin_config
from infrastructure.migrations import IncompatibleChange, MigrationResult, migrate
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
        # a handful of reference prices per poll: one partition keeps them all in order
        TopicDef(kafka.reference_topic, 1, {"retention.ms": str(kafka.retention_ms)}),
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
    """Create missing namespaces and tables, migrate existing ones; return the identifiers created.
    A migration it must refuse is logged (no table changed), not raised: see the module docstring."""
    created = create_missing(catalog, tables)
    try:
        migrate(catalog, _existing(tables, created))
    except IncompatibleChange as exc:
        log.warning("%s; `lakehouse migrate --dry-run` shows the plan", exc)
    return created


def bootstrap_tables(
    catalog: Catalog, tables: tuple[TableDef, ...] = TABLES
) -> tuple[list[str], MigrationResult]:
    """What ``lakehouse init`` runs: create what is missing, migrate the rest, return both.
    Raises ``IncompatibleChange`` (no table migrated) if a live table cannot reach its contract."""
    created = create_missing(catalog, tables)
    return created, migrate(catalog, _existing(tables, created))


def _existing(tables: tuple[TableDef, ...], created: list[str]) -> tuple[TableDef, ...]:
    return tuple(t for t in tables if t.identifier not in created)


def create_missing(catalog: Catalog, tables: tuple[TableDef, ...]) -> list[str]:
    """Create missing namespaces and tables from their contracts; return the identifiers created."""
    for namespace in NAMESPACES:
        catalog.create_namespace_if_not_exists(namespace)
    created = []
    for table in tables:
        try:
            catalog.load_table(table.identifier)
        except NoSuchTableError:
            catalog.create_table(
                table.identifier,
                schema=table.schema,
                partition_spec=table.partition_spec,
                sort_order=table.sort_order,
                properties=table.properties,
            )
            created.append(table.identifier)
    return created
