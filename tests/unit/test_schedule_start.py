"""The hourly schedule starts where the stack starts (both stacks), not at a fixed date months back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from infrastructure.airflow_stack import stack_start_date
from infrastructure.settings import Settings


def test_unset_start_date_is_the_first_hour_the_stack_ran_and_stays(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    before = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = stack_start_date(settings, tmp_path / "airflow")
    assert before <= first <= datetime.now(UTC) and first.minute == 0
    (tmp_path / "airflow" / "start_date").write_text((first - timedelta(days=2)).isoformat())
    # a later parse (another container, a restart) reads what the first one persisted
    assert stack_start_date(settings, tmp_path / "airflow") == first - timedelta(days=2)
    assert [p.name for p in (tmp_path / "airflow").iterdir()] == ["start_date"]


def test_a_configured_start_date_wins_and_writes_nothing(tmp_path: Path) -> None:
    chosen = datetime(2026, 1, 1, tzinfo=UTC)
    settings = Settings(_env_file=None, data_dir=tmp_path, orchestration={"start_date": "2026-01-01T00:00"})
    assert stack_start_date(settings, tmp_path / "airflow") == chosen
    assert not (tmp_path / "airflow").exists()
