"""SeaweedFS's filer metadata log purge: reading ``fs.ls -l``, choosing the minute files to delete."""

from __future__ import annotations

from datetime import UTC, datetime

from infrastructure import seaweed_log
from infrastructure.seaweed_log import Entry, LogFile

LISTING = """\
drwxr-xr-x   0 root root      0 /topics/.system/log/2026-12-01
drwxr-xr-x   0 root root      0 /topics/.system/log/2026-12-02
total 2
-rw-r--r--   2 root root 16660364 /topics/.system/log/2026-12-02/02-22.5350baea
-rw-r--r--   4 root root 25258370 /topics/.system/log/2026-12-02/02-23.5350baea
total 2
"""


def minute(hh: int, mm: int, day: int = 2) -> datetime:
    return datetime(2026, 12, day, hh, mm, tzinfo=UTC)


def test_listing_gives_directories_and_files_with_sizes() -> None:
    entries = seaweed_log.parse_listing(LISTING)
    assert [e.is_dir for e in entries] == [True, True, False, False]
    assert entries[2] == Entry("/topics/.system/log/2026-12-02/02-22.5350baea", 16660364, False)


def test_minute_files_are_read_as_their_utc_minute_and_nothing_else_is() -> None:
    files = [seaweed_log.log_file(e) for e in seaweed_log.parse_listing(LISTING)]
    assert files[:2] == [None, None]  # the day folders
    assert files[2] == LogFile("/topics/.system/log/2026-12-02/02-22.5350baea", 16660364, minute(2, 22))
    assert seaweed_log.log_file(Entry("/topics/.system/log/2026-12-02/notes.txt", 3, False)) is None


def test_a_file_expires_once_its_whole_minute_is_older_than_the_cutoff_and_the_newest_never() -> None:
    files = [LogFile(f"/l/2026-12-02/02-{m:02d}.ab", 10, minute(2, m)) for m in (20, 21, 22)]
    assert seaweed_log.expired(files, minute(2, 21)) == files[:1]  # 02:21 itself ends at 02:22
    assert seaweed_log.expired(files, minute(2, 22)) == files[:2]
    assert seaweed_log.expired(files, minute(3, 0)) == files[:2]  # the newest stays: still written
    assert seaweed_log.expired([], minute(3, 0)) == []


def test_the_purge_script_names_each_file() -> None:
    files = [
        LogFile("/l/2026-12-02/02-20.ab", 1, minute(2, 20)),
        LogFile("/l/2026-12-02/02-21.ab", 1, minute(2, 21)),
    ]
    assert seaweed_log.rm_script(files) == "fs.rm /l/2026-12-02/02-20.ab\nfs.rm /l/2026-12-02/02-21.ab\n"


def test_volume_totals_sum_every_volume() -> None:
    listing = (
        "volume Id:1, Size:2328432, ReplicaPlacement:000, Collection:warehouse, Version:3, Ttl:, FileCount:600,"
        " DeleteCount:0, DeletedByteCount:0, ReadOnly:false, ModifiedAtSecond:1796178216\n"
        "volume Id:2, Size:41919080, ReplicaPlacement:000, Collection:, Version:3, Ttl:, FileCount:6,"
        " DeleteCount:2, DeletedByteCount:16660388, ReadOnly:false, ModifiedAtSecond:1796178330\n"
        "total size:44247512 file_count:606\n"
    )
    assert seaweed_log.volume_totals(listing) == (2328432 + 41919080, 16660388)
