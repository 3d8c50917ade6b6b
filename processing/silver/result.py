"""What a silver run touches and reports: the table identifiers and the result both engines return.

Kept apart from the dispatcher (``run.py``) so the engines can import these types without importing
the module that imports them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from infrastructure.tables import BRONZE_TRADES, SILVER_TRADES, SILVER_TRADES_REJECTED
from infrastructure.times import Window

Engine = Literal["duckdb", "spark"]
# how the Spark job (a child process) reports back on stdout
RESULT_PREFIX = "SILVER_RESULT "
UNAVAILABLE_PREFIX = "SILVER_UNAVAILABLE "


@dataclass(frozen=True)
class SilverTables:
    """Identifiers ("namespace.table") of the three tables a run touches; the contracts' by default.
    ``branch``: the Iceberg branch silver and its rejects are committed to (write-audit-publish's
    ``audit-<hour>``, see ``processing/wap.py``); None commits to ``main``."""

    bronze: str = BRONZE_TRADES.identifier
    silver: str = SILVER_TRADES.identifier
    rejected: str = SILVER_TRADES_REJECTED.identifier
    branch: str | None = None


CONTRACT_TABLES = SilverTables()


@dataclass(frozen=True)
class SilverResult:
    """What one run did. Every bronze row of the window is counted exactly once:
    ``bronze_rows == rejected + duplicates + inserted + replaced + unchanged``."""

    engine: str
    start: datetime
    end: datetime
    bronze_rows: int  # rows of bronze in [start, end)
    rejected: int  # of those, invalid (all recorded in silver.trades_rejected)
    rejected_new: int  # rejects appended now (0 when the window was refined before)
    duplicates: int  # valid rows that lost to another copy of the same trade in the window
    inserted: int  # keys new to silver
    replaced: int  # keys whose silver row was beaten by this window's copy
    unchanged: int  # keys silver already held with an equal or better copy
    duration_s: float
    commit_s: float  # of which writing the tables (pyiceberg commits / MERGE INTO)

    @classmethod
    def from_counts(
        cls,
        engine: str,
        window: Window,
        *,
        valid_rows: int,
        keys: int,
        rejected: int,
        rejected_new: int,
        changed: int,
        replaced: int,
        duration_s: float,
        commit_s: float,
    ) -> SilverResult:
        """From what both engines count: valid rows and distinct keys of the window, rejects, and
        the candidates that changed silver (of which ``replaced`` replaced a row)."""
        return cls(
            engine=engine,
            start=window.start,
            end=window.end,
            bronze_rows=valid_rows + rejected,
            rejected=rejected,
            rejected_new=rejected_new,
            duplicates=valid_rows - keys,
            inserted=changed - replaced,
            replaced=replaced,
            unchanged=keys - changed,
            duration_s=duration_s,
            commit_s=commit_s,
        )

    @property
    def written(self) -> int:
        return self.inserted + self.replaced

    def metric_counts(self) -> dict[str, int]:
        """Rows by kind for the run's pushed metrics (``lakehouse_job_rows{kind=...}``)."""
        return {
            "in": self.bronze_rows, "out": self.written, "rejected": self.rejected,
            "duplicates": self.duplicates, "inserted": self.inserted, "replaced": self.replaced,
            "unchanged": self.unchanged,
        }  # fmt: skip

    def to_json(self) -> str:
        values = dataclasses.asdict(self)
        values["start"], values["end"] = self.start.isoformat(), self.end.isoformat()
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> SilverResult:
        values = json.loads(text)
        values["start"] = datetime.fromisoformat(values["start"])
        values["end"] = datetime.fromisoformat(values["end"])
        return cls(**values)

    def steps(self) -> list[str]:
        """The counts step by step, in the order the SQL runs (``processing/silver/sql.py``)."""
        valid = self.bronze_rows - self.rejected
        keys = valid - self.duplicates
        return [
            f"  1 read        {self.bronze_rows} bronze rows ingested in the window",
            f"  2 validate    {valid} valid, {self.rejected} rejected ({self.rejected_new} new to trades_rejected)",
            f"  3 deduplicate {keys} keys ({self.duplicates} copies of a trade dropped)",
            f"  4 merge       {self.inserted} inserted, {self.replaced} replaced, {self.unchanged} unchanged"
            f" (commit {self.commit_s:.2f} s)",
        ]

    def summary(self) -> str:
        return (
            f"silver [{self.start.isoformat()}, {self.end.isoformat()}) with {self.engine}: "
            f"{self.bronze_rows} bronze rows -> {self.inserted} inserted, {self.replaced} replaced, "
            f"{self.unchanged} unchanged, {self.duplicates} duplicates removed, "
            f"{self.rejected} rejected ({self.rejected_new} new) in {self.duration_s:.2f} s"
        )
