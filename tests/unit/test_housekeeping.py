"""Service logs rotate by copy-and-truncate (the service keeps appending); old task logs go."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infrastructure import housekeeping


def test_only_logs_over_the_limit_rotate() -> None:
    sizes = {Path("a.log"): 10, Path("b.log"): 11, Path("c.log"): 0}
    assert housekeeping.logs_to_rotate(sizes, 10) == [Path("b.log")]


def test_a_rotated_log_keeps_one_copy_and_its_writer_appends_at_the_new_end(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    writer = open(log, "ab")  # as services.start opens a service's output  # noqa: SIM115
    try:
        writer.write(b"x" * 100)
        writer.flush()
        (tmp_path / "quiet.log").write_bytes(b"y" * 5)
        assert housekeeping.rotate_service_logs(tmp_path, 50) == [log]
        assert (tmp_path / "svc.log.1").read_bytes() == b"x" * 100 and log.stat().st_size == 0
        writer.write(b"next line\n")
        writer.flush()
        assert log.read_bytes() == b"next line\n"  # no hole of 100 NULs before it
        assert (tmp_path / "quiet.log").read_bytes() == b"y" * 5 and not (tmp_path / "quiet.log.1").exists()
        writer.write(b"z" * 100)
        writer.flush()
        housekeeping.rotate_service_logs(tmp_path, 50)
        assert (tmp_path / "svc.log.1").read_bytes() == b"next line\n" + b"z" * 100  # one copy, the newest
    finally:
        writer.close()
    assert housekeeping.rotate_service_logs(tmp_path / "missing", 50) == []


def test_task_logs_older_than_the_cutoff_go_and_so_do_the_folders_they_leave_empty(tmp_path: Path) -> None:
    old_run = tmp_path / "dag_id=crypto_hourly" / "run_id=old" / "task_id=silver"
    new_run = tmp_path / "dag_id=crypto_hourly" / "run_id=new" / "task_id=silver"
    old_run.mkdir(parents=True), new_run.mkdir(parents=True)
    (old_run / "attempt=1.log").write_text("o" * 30)
    (new_run / "attempt=1.log").write_text("n" * 7)
    week_ago = time.time() - 8 * 86400
    os.utime(old_run / "attempt=1.log", (week_ago, week_ago))
    pruned = housekeeping.prune_old_files(tmp_path, datetime.now(UTC) - timedelta(days=7))
    assert pruned == housekeeping.FilesPruned(1, 30)
    assert not (tmp_path / "dag_id=crypto_hourly" / "run_id=old").exists()
    assert (new_run / "attempt=1.log").read_text() == "n" * 7 and tmp_path.is_dir()
    assert housekeeping.prune_old_files(tmp_path / "missing", datetime.now(UTC)) == housekeeping.FilesPruned(
        0, 0
    )
