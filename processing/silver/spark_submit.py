"""Run the Spark silver job from Python: ``spark-submit processing/silver/spark_batch.py``.

The job gets the caller's ``Settings`` as ``LAKEHOUSE_*`` variables, so it refines exactly what the
caller configured, and reports its ``SilverResult`` on its last stdout line. Where Spark has no
Iceberg runtime (pip's pyspark, i.e. outside the compose stack) the job stops at once with a
message saying so, and :class:`SparkUnavailable` carries that message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from infrastructure.settings import Settings, to_environment
from infrastructure.times import Window
from processing.silver.result import RESULT_PREFIX, UNAVAILABLE_PREFIX, SilverResult, SilverTables

JOB = Path(__file__).resolve().parent / "spark_batch.py"
ICEBERG_MISSING_EXIT = 2


class SparkUnavailable(RuntimeError):
    """The Spark engine cannot run here; the message says where it can."""


def spark_submit_path() -> str | None:
    """``spark-submit`` from PATH, else the one pip's pyspark put beside this interpreter."""
    beside = Path(sys.executable).parent / "spark-submit"
    return shutil.which("spark-submit") or (str(beside) if beside.is_file() else None)


def submit_command(spark_submit: str, window: Window, tables: SilverTables) -> list[str]:
    return [
        spark_submit,
        str(JOB),
        "--start", window.start.isoformat(),
        "--end", window.end.isoformat(),
        "--bronze", tables.bronze,
        "--silver", tables.silver,
        "--rejected", tables.rejected,
    ]  # fmt: skip


def _reported(stdout: str, prefix: str) -> str | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(prefix):
            return line[len(prefix) :]
    return None


def parse_result(stdout: str) -> SilverResult:
    reported = _reported(stdout, RESULT_PREFIX)
    if reported is None:
        raise RuntimeError("the Spark silver job printed no result line")
    return SilverResult.from_json(reported)


def submit(settings: Settings, window: Window, tables: SilverTables) -> SilverResult:
    if tables.branch is not None:
        raise ValueError(
            f"the Spark silver job commits to main only, not to branch {tables.branch!r}: "
            "set LAKEHOUSE_ORCHESTRATION__WRITE_AUDIT_PUBLISH=false for the spark engine"
        )
    spark_submit = spark_submit_path()
    if spark_submit is None:
        raise SparkUnavailable(
            "spark-submit not found: the Spark engine runs in the compose stack (`make spark-batch`); "
            "here use `--engine duckdb`"
        )
    # the child inherits this environment (PATH, JAVA_HOME) plus the caller's settings; the driver
    # runs this interpreter so the project's packages import
    env = {**os.environ, **to_environment(settings), "PYSPARK_PYTHON": sys.executable}
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    done = subprocess.run(
        submit_command(spark_submit, window, tables), env=env, capture_output=True, text=True, check=False
    )
    unavailable = _reported(done.stdout, UNAVAILABLE_PREFIX)
    if done.returncode == ICEBERG_MISSING_EXIT and unavailable:
        raise SparkUnavailable(unavailable)
    if done.returncode != 0:
        raise RuntimeError(f"the Spark silver job failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return parse_result(done.stdout)
