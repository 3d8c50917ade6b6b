"""Click parameter types every command shares, so one input means the same thing everywhere."""

from __future__ import annotations

from datetime import datetime

import click

from infrastructure.times import parse_utc


class UtcTime(click.ParamType):
    """An ISO 8601 time; without a zone it is UTC (``2026-11-22T10:00``, ``2026-11-22T10:00:00Z``)."""

    name = "TIME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return parse_utc(value)
        try:
            return parse_utc(str(value), "value")
        except ValueError as exc:
            self.fail(str(exc).removeprefix("value "), param, ctx)


UTC_TIME = UtcTime()


def window_option_pair(start: datetime, end: datetime) -> None:
    """A window's end must come after its start (a usage error, checked before anything runs)."""
    if end <= start:
        raise click.BadParameter(
            f"--end {end.isoformat()} is not after --start {start.isoformat()}", param_hint="--end"
        )
