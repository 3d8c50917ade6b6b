"""The audit and publish steps of write-audit-publish (docs/write-audit-publish.md): the quality
suites run against an hour's *staged* state (silver at its ``audit-<hour>`` branch heads, gold in
``gold_audit``), and only a passing audit publishes it (``processing/wap.py`` does the Iceberg part).

``staged_datasets`` aims the ordinary datasets (``quality.datasets``, every suite's SQL) at the
staged state by rewriting their table references, so a suite added there is audited with no
second copy of its SQL.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from infrastructure.catalog import load_catalog
from infrastructure.settings import Settings
from infrastructure.times import Window
from processing import wap
from quality.checks import QualityResult, quality_job
from quality.datasets import DATASETS, Dataset

log = logging.getLogger(__name__)
PUBLISH_ATTEMPTS = 3  # re-stagings of silver when main moved under the branch (compaction at :05)

_SILVER = re.compile(r"\blake\.silver\.(trades_rejected|trades)\b")
_GOLD = re.compile(r"\blake\.gold\.")


def staged_sql(sql: str, heads: dict[str, int]) -> str:
    """``sql`` reading silver at ``heads`` (table name -> snapshot id) and gold from ``gold_audit``
    (pure). A subquery, because DuckDB takes no alias after an ``AT`` clause."""

    def at(match: re.Match) -> str:
        name = match.group(1)
        return f"(select * from lake.silver.{name} AT (VERSION => {int(heads[name])}))"

    return _GOLD.sub(f"lake.{wap.AUDIT_NAMESPACE}.", _SILVER.sub(at, sql))


def staged_datasets(heads: dict[str, int], datasets: tuple[Dataset, ...] = DATASETS) -> tuple[Dataset, ...]:
    return tuple(replace(d, sql=staged_sql(d.sql, heads)) for d in datasets)


def _heads(settings: Settings, hour: datetime) -> dict[str, int]:
    staged = wap.staged_snapshots(load_catalog(settings), hour)
    return {identifier.partition(".")[2]: snapshot for identifier, snapshot in staged.items()}


def audit_job(settings: Settings, window: Window) -> QualityResult:
    """The quality suites over the hour's staged silver and gold, pushed as job ``quality``.
    Raises ``wap.NotStaged`` if silver was not staged for the hour."""
    return quality_job(settings, window, datasets=staged_datasets(_heads(settings, window.start)))


class AuditFailed(RuntimeError):
    """The staged hour failed its suites; the message is the suites' summary."""


@dataclass(frozen=True)
class PublishResult:
    hour: datetime
    silver: dict[str, str]  # table -> what the fast-forward did
    gold: dict[str, str]  # model -> what the copy did
    restaged: int  # times silver was re-staged because main had moved

    def summary(self) -> str:
        lines = [f"publish {self.hour.isoformat()} (re-staged {self.restaged}x):"]
        lines += [f"  {name}: {outcome}" for name, outcome in {**self.silver, **self.gold}.items()]
        return "\n".join(lines)


def dbt_models(settings: Settings) -> list[wap.GoldModel]:
    """The gold models of the last dbt build (its ``manifest.json``)."""
    manifest = settings.data_dir.resolve() / "dbt" / "target" / "manifest.json"
    if not manifest.is_file():
        raise wap.NotStaged(f"no dbt manifest at {manifest}: run gold for the hour first")
    return wap.gold_models(json.loads(Path(manifest).read_text()))


def publish_hour(settings: Settings, window: Window, attempts: int = PUBLISH_ATTEMPTS) -> PublishResult:
    """Publish the hour's audited staged state: silver's fast-forward, then gold's copy (each
    idempotent, so a re-run after a crash finishes what is left and publishes nothing twice).

    If silver's ``main`` moved since staging, the hour is re-staged from the new ``main`` and
    audited again before another try; a failed re-audit raises ``AuditFailed`` (nothing published)."""
    from processing.silver.run import run_staged

    catalog = load_catalog(settings)
    restaged = 0
    while True:
        try:
            silver = wap.publish_silver(catalog, window.start)
            break
        except wap.MainMoved as exc:
            if restaged >= attempts:
                raise
            restaged += 1
            log.warning("%s; re-staging (%d of %d)", exc, restaged, attempts)
            run_staged(settings, window)
            audit = audit_job(settings, window)
            if not audit.success:
                raise AuditFailed(audit.summary()) from exc
    gold = wap.publish_gold(catalog, window.start, dbt_models(settings))
    return PublishResult(window.start, silver, gold, restaged)


def discard_hour(settings: Settings, window: Window) -> dict[str, list[str] | dict[str, str]]:
    """Throw the hour's staged state away: silver's audit branches, gold_audit back to gold."""
    catalog = load_catalog(settings)
    return {
        "silver": wap.discard_silver(catalog, window.start),
        "gold": wap.discard_gold(catalog, window.start, wap.audit_tables(catalog)),
    }
