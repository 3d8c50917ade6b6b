"""The one way a time given by a person or a scheduler becomes a UTC datetime.

Command options, DAG parameters and XCom values are ISO 8601 strings (``2026-11-22T10:00:00Z``,
``2026-11-22T10:00``) or datetimes (Airflow's pendulum). A time without a zone is UTC, as every
timestamp in the lakehouse is. Wire data from exchanges is stricter (a frame without a zone is
invalid: ``ingestion/events.py``); this is for inputs people and schedulers give.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


def parse_utc(value: str | datetime, name: str = "time") -> datetime:
    """An aware UTC datetime, or ``ValueError`` naming ``name`` and the value that is not a time."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except (ValueError, AttributeError):
            raise ValueError(
                f"{name} is not an ISO 8601 time: {value!r} (e.g. 2026-11-22T10:00:00Z; no zone means UTC)"
            ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def hour_floor(value: datetime) -> datetime:
    """The start of the UTC hour ``value`` falls in."""
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval ``[start, end)``: what one silver, quality or gold run owns."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"window {name} must be timezone-aware, got {value.isoformat()}")
            object.__setattr__(self, name, value.astimezone(UTC))
        if self.start >= self.end:
            raise ValueError(
                f"empty window: start {self.start.isoformat()} is not before end {self.end.isoformat()}"
            )

    @classmethod
    def parse(cls, start: str | datetime, end: str | datetime) -> Window:
        """From ISO 8601 strings or datetimes (see ``parse_utc``)."""
        return cls(parse_utc(start, "window start"), parse_utc(end, "window end"))
