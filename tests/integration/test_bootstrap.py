"""`lakehouse init`'s bootstrap: creates topics, namespaces and tables once; a second run changes nothing."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from infrastructure.bootstrap import ensure_tables, ensure_topics
from infrastructure.catalog import load_catalog
from infrastructure.tables import TABLES
from processing.duckdb_engine import connect
from tests.fixtures.services import settings_for


def test_topics_are_created_once(broker) -> None:
    settings = settings_for(
        broker, kafka={"trades_topic": "boot.trades", "dlq_topic": "boot.dlq", "partitions": 3}
    )
    assert sorted(ensure_topics(settings.kafka)) == ["boot.dlq", "boot.trades"]
    assert ensure_topics(settings.kafka) == []
    topics = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).topics
    assert len(topics["boot.trades"].partitions) == 3


def test_tables_are_created_once_and_readable_by_duckdb(seaweedfs) -> None:
    settings = settings_for(seaweedfs=seaweedfs)
    catalog = load_catalog(settings)
    ensure_tables(catalog)
    snapshot_ids = {t.identifier: catalog.load_table(t.identifier).metadata_location for t in TABLES}
    assert ensure_tables(catalog) == []
    assert {t.identifier: catalog.load_table(t.identifier).metadata_location for t in TABLES} == snapshot_ids
    bronze = catalog.load_table("bronze.trades")
    assert [f.name for f in bronze.spec().fields] == ["event_day", "ingest_hour"]
    con = connect(settings)
    assert con.execute("SELECT count(*) FROM lake.bronze.trades").fetchone() == (0,)
