"""``lakehouse audit`` / ``publish`` / ``discard``: an hour's write-audit-publish state by hand
(docs/write-audit-publish.md). The hourly DAG runs the same functions (``quality.audit``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from orchestration.cli.params import UTC_TIME


def _hour_window(hour: datetime):
    from infrastructure.times import Window

    if hour != hour.replace(minute=0, second=0, microsecond=0):
        raise click.BadParameter(f"{hour.isoformat()} is not the start of an hour", param_hint="HOUR")
    return Window(hour, hour + timedelta(hours=1))


def _audit(window) -> bool:
    from infrastructure.settings import load_settings
    from quality.audit import audit_job

    result = audit_job(load_settings(), window)
    click.echo(result.summary())
    return result.success


@click.command("audit")
@click.argument("hour", type=UTC_TIME)
def audit_command(hour: datetime) -> None:
    """Run the quality suites on HOUR's staged state (silver's audit-<HOUR> branches, gold_audit);
    exits 1 if a suite fails. Publishes nothing."""
    if not _audit(_hour_window(hour)):
        raise SystemExit(1)


@click.command("publish")
@click.argument("hour", type=UTC_TIME)
@click.option("--skip-audit", is_flag=True, help="Publish without running the suites first (you checked).")
def publish_command(hour: datetime, skip_audit: bool) -> None:
    """Audit HOUR's staged state, then publish it: silver's main fast-forwarded to the audit
    branches, gold's changes copied into gold.* (one commit per table). Refuses a failing audit."""
    from infrastructure.settings import load_settings
    from quality.audit import publish_hour

    window = _hour_window(hour)
    if not skip_audit and not _audit(window):
        raise click.ClickException(f"the audit of {hour.isoformat()} failed: nothing published")
    click.echo(publish_hour(load_settings(), window).summary())


@click.command("discard")
@click.argument("hour", type=UTC_TIME)
def discard_command(hour: datetime) -> None:
    """Throw away HOUR's staged state: remove silver's audit-<HOUR> branches and roll gold_audit back
    to what gold.* holds. Published tables are untouched; the hourly run can stage the hour again."""
    from infrastructure.settings import load_settings
    from quality.audit import discard_hour

    done = discard_hour(load_settings(), _hour_window(hour))
    click.echo(f"silver branches removed: {', '.join(done['silver']) or 'none'}")
    for model, outcome in sorted(done["gold"].items()):
        click.echo(f"gold_audit.{model}: {outcome}")
