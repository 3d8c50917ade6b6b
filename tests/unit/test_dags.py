"""Every DAG imports cleanly, quickly, and is declared the way the pipeline needs."""

from __future__ import annotations

import pytest

from tests.fixtures.airflow import DAGS_FOLDER


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    # parsing must not persist a start date into the developer's own data folder
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LAKEHOUSE_ORCHESTRATION__START_DATE", "2026-11-01T00:00:00Z")
        return DagBag(dag_folder=str(DAGS_FOLDER))  # examples are off via AIRFLOW__CORE__LOAD_EXAMPLES


def test_every_dag_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"crypto_hourly", "crypto_maintenance", "crypto_backfill"}


@pytest.mark.parametrize("dag_id", ["crypto_hourly", "crypto_maintenance", "crypto_backfill"])
def test_dag_hygiene(dagbag, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert dag.tags and "lakehouse" in dag.tags
    assert dag.max_active_runs == 1
    assert dag.doc_md and dag_id in dag.doc_md
    assert all(t.retries >= 1 for t in dag.tasks if t.task_id != "quality")
    assert dag.dagrun_timeout is not None


def _edges(dag) -> set[tuple[str, str]]:
    return {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}


def test_hourly_graph_and_interval_timetable(dagbag) -> None:
    from airflow.timetables.interval import CronDataIntervalTimetable

    dag = dagbag.dags["crypto_hourly"]
    assert _edges(dag) == {
        ("silver", "gold"), ("gold", "quality"), ("quality", "publish"), ("publish", "completeness"),
        ("completeness", "backfill_gaps"),
        ("silver_reference", "gold"),
    }  # fmt: skip
    trigger = dag.get_task("backfill_gaps")
    assert trigger.partial_kwargs["trigger_dag_id"] == "crypto_backfill"  # the DAG it starts exists
    assert trigger.partial_kwargs["skip_when_already_exists"] is True
    assert isinstance(dag.timetable, CronDataIntervalTimetable)  # each run owns a real hour
    assert dag.catchup is True
    assert dag.get_task("quality").retries == 0  # a retry cannot fix bad data


def test_backfill_graph_and_params(dagbag) -> None:
    dag = dagbag.dags["crypto_backfill"]
    assert _edges(dag) == {
        ("backfill", "wait_for_bronze"),
        ("wait_for_bronze", "silver"),
        ("silver", "gold"),
        ("gold", "quality"),
        ("silver", "recheck"),
    }
    assert {"product", "start", "end", "first_id", "last_id"} <= set(dag.params.keys())
    assert type(dag.timetable).__name__ == "NullTimetable"  # manual only


def test_maintenance_is_hourly_and_covers_bronze_and_silver(dagbag) -> None:
    from processing.maintenance import MAINTAINED_TABLES

    assert {"bronze.trades", "silver.trades"} <= set(MAINTAINED_TABLES)
    dag = dagbag.dags["crypto_maintenance"]
    assert [t.task_id for t in dag.tasks] == ["tables", "maintain", "housekeeping"]
    storage = dag.get_task("housekeeping")
    assert storage.upstream_task_ids == {"maintain"} and storage.trigger_rule == "all_done"
    assert dag.timetable.summary == "5 * * * *"  # each run owns the hour that closed before it


def test_dag_files_keep_heavy_imports_inside_tasks() -> None:
    heavy = ("pyiceberg", "duckdb", "pyspark", "great_expectations", "dbt", "confluent_kafka", "pandas")
    for path in DAGS_FOLDER.glob("*.py"):
        top_level = [line for line in path.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert not [line for line in top_level if any(h in line for h in heavy)], path.name
