"""SeaweedFS's filer metadata log stays bounded: the purge deletes the journal's minute files older
than the cutoff, the volumes give their space back, and no table byte is touched."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import pyarrow as pa

from infrastructure import seaweed_log, services
from infrastructure.catalog import load_catalog
from tests.fixtures.services import settings_for

WAIT_FOR_SECOND_MINUTE_S = 300  # the filer starts a new minute file at most a minute (+ flush) later


def test_purge_deletes_old_journal_minutes_and_reclaims_their_space_without_touching_tables(
    seaweedfs,
) -> None:
    settings = settings_for(
        seaweedfs=seaweedfs,
        data_dir=seaweedfs.spec.cwd.parent,
        stack={"seaweed_master_port": seaweedfs.master_port},
    )
    assert seaweed_log.shell_available(settings)
    catalog = load_catalog(settings)
    catalog.create_namespace_if_not_exists("storagelog")
    table = catalog.create_table(
        "storagelog.commits", schema=pa.schema([("i", pa.int64()), ("pad", pa.string())])
    )
    # commits until the journal has files of at least two minutes (each commit journals its metadata.json)
    deadline, commits = time.monotonic() + WAIT_FOR_SECOND_MINUTE_S, 0
    while len(seaweed_log.log_files(settings)) < 2 or commits < 20:
        assert time.monotonic() < deadline, "the filer wrote no second minute file of its log"
        table.append(pa.table({"i": [commits], "pad": ["x" * 2000]}))
        commits += 1
    before = seaweed_log.log_files(settings)
    stored_before, garbage_before = seaweed_log.volume_bytes(settings)

    result = seaweed_log.purge_log(settings, datetime.now(UTC))

    newest = max(f.minute for f in before)
    old = [f for f in before if f.minute != newest]
    after = seaweed_log.log_files(settings)
    # (the filer may start a new minute between the listing and the purge: then the file that was
    # newest goes too, so these are bounds, not equalities)
    assert result.files_deleted >= len(old) >= 1 and result.bytes_deleted >= sum(f.size for f in old)
    assert after and not {f.path for f in after} & {f.path for f in old}  # the newest is kept
    # the deleted minutes' bytes leave the volumes' live bytes (vacuumed, or counted as garbage for
    # SeaweedFS's own vacuum); the filer keeps journaling meanwhile, into the files kept
    stored_after, garbage_after = seaweed_log.volume_bytes(settings)
    sizes_before = {f.path: f.size for f in before}
    journal_growth = sum(f.size - sizes_before.get(f.path, 0) for f in after)
    live_before, live_after = stored_before - garbage_before, stored_after - garbage_after
    # (the volumes store compressible chunks gzipped, so a logical byte deleted frees less than a
    # byte: measured 0.4-1.0 here)
    freed = live_before + journal_growth - live_after
    assert freed >= 0.1 * result.bytes_deleted, (live_before, live_after, journal_growth)
    # every commit is still there
    rows = catalog.load_table("storagelog.commits").scan().to_arrow()
    assert sorted(rows["i"].to_pylist()) == list(range(commits))


def test_seaweedfs_is_ready_only_when_the_master_serves_every_volume_on_disk(seaweedfs, tmp_path) -> None:
    folder, master = seaweedfs.spec.cwd, f"127.0.0.1:{seaweedfs.master_port}"
    assert services.volumes_served(folder, master)
    # the same master seen from a folder holding one volume more than it serves (a restart before
    # the volume server's first heartbeat looks like this)
    shutil.copy(folder / "security.toml", tmp_path / "security.toml")
    for i in range(len(list(folder.glob("*.dat"))) + 1):
        (tmp_path / f"{i + 1000}.dat").touch()
    assert not services.volumes_served(tmp_path, master)
