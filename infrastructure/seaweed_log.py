"""SeaweedFS's filer metadata log, kept bounded: minute files older than a retention are deleted and
their volumes vacuumed.

The filer journals every change (each object written or deleted, each catalog commit) with the
entry itself, including the content of small files it keeps inline such as every
``metadata.json``, into one file per minute under ``/topics/.system/log/<YYYY-MM-DD>/<HH-MM>.<filer>``.
SeaweedFS keeps them for metadata subscribers that may replay history (``filer.sync``, replication);
nothing in the embedded stack does, and nothing deletes them. Measured on the soak's bronze table
(one commit per 5 s): about 0.24 MB of log per commit, 10.6 GB of volumes after 64 simulated hours
while the bucket listed 0.6 GB. ``weed mini`` runs an admin server, and while one is connected the
master skips its maintenance scripts (whose default ``fs.log.purge -daysAgo=7`` is day-grained
anyway), so the hourly maintenance purges it here through ``weed shell``. The compose stack runs
``weed server`` without an admin server: its master purges by itself (docker-compose.yml).

``weed shell`` (:func:`infrastructure.services.run_shell`) talks gRPC with mutual TLS, configured by
the ``security.toml`` in SeaweedFS's data folder. The embedded stack names the log
files in UTC (``TZ=UTC`` in the service's environment, :func:`infrastructure.services.seaweedfs_spec`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infrastructure.services import SHELL_TIMEOUT_S, run_shell, venv_bin
from infrastructure.settings import Settings

LOG_ROOT = "/topics/.system/log"
GARBAGE_WAIT_S = 30.0
# one line of `fs.ls -l`: mode, replicas/chunks, owner, group, size, full path
_LS_LINE = re.compile(r"^(?P<mode>[d-][rwx-]{9})\s+\d+\s+\S+\s+\S+\s+(?P<size>\d+)\s+(?P<path>/\S+)$")
_MINUTE_FILE = re.compile(r"/(?P<day>\d{4}-\d{2}-\d{2})/(?P<hm>\d{2}-\d{2})\.[0-9a-f]+$")


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    is_dir: bool


@dataclass(frozen=True)
class LogFile:
    path: str
    size: int
    minute: datetime  # the minute the file journals (UTC)


@dataclass(frozen=True)
class LogPurge:
    files_deleted: int
    bytes_deleted: int
    files_kept: int
    bytes_kept: int
    seconds: float

    def metric_counts(self) -> dict[str, float]:
        return {
            "log_files_deleted": self.files_deleted,
            "log_bytes_deleted": self.bytes_deleted,
            "log_files_kept": self.files_kept,
            "log_bytes_kept": self.bytes_kept,
        }

    def summary(self) -> str:
        return (
            f"storage log: deleted {self.files_deleted} minute files ({self.bytes_deleted / 1e6:.1f} MB), "
            f"kept {self.files_kept} ({self.bytes_kept / 1e6:.1f} MB) in {self.seconds:.1f}s"
        )


# ---------------------------------------------------------------- pure


def parse_listing(text: str) -> list[Entry]:
    """The entries of ``fs.ls -l`` output (other lines, such as ``total N``, are ignored)."""
    entries = []
    for line in text.splitlines():
        m = _LS_LINE.match(line.strip())
        if m:
            entries.append(Entry(m["path"], int(m["size"]), m["mode"].startswith("d")))
    return entries


def log_file(entry: Entry) -> LogFile | None:
    """The journal minute file ``entry`` is, or None for anything else."""
    m = _MINUTE_FILE.search(entry.path)
    if entry.is_dir or not m:
        return None
    minute = datetime.strptime(f"{m['day']} {m['hm']}", "%Y-%m-%d %H-%M").replace(tzinfo=UTC)
    return LogFile(entry.path, entry.size, minute)


def expired(files: list[LogFile], older_than: datetime) -> list[LogFile]:
    """The files whose whole minute ended at or before ``older_than``; never the newest file (the
    filer may still be appending to it)."""
    newest = max((f.minute for f in files), default=None)
    return [f for f in files if f.minute + timedelta(minutes=1) <= older_than and f.minute != newest]


def volume_totals(volume_list: str) -> tuple[int, int]:
    """(bytes, deleted bytes) held by every volume, from ``volume.list`` output."""
    sizes = [
        (int(m[1]), int(m[2]))
        for m in re.finditer(r"volume Id:\d+, Size:(\d+),.*?DeletedByteCount:(\d+)", volume_list)
    ]
    return sum(s for s, _ in sizes), sum(d for _, d in sizes)


def rm_script(files: list[LogFile]) -> str:
    return "".join(f"fs.rm {f.path}\n" for f in files)


# ---------------------------------------------------------------- I/O


def seaweed_dir(settings: Settings) -> Path:
    """SeaweedFS's data folder in the embedded stack (where its ``security.toml`` is)."""
    return settings.data_dir / "seaweedfs"


def shell_available(settings: Settings) -> bool:
    """Whether this process can reach this stack's SeaweedFS with ``weed shell`` (embedded stack)."""
    return (seaweed_dir(settings) / "security.toml").is_file() and Path(venv_bin("weed")).is_file()


def weed_shell(settings: Settings, script: str, timeout_s: float = SHELL_TIMEOUT_S) -> str:
    """``weed shell`` against this stack's SeaweedFS."""
    master = f"{settings.stack.host}:{settings.stack.seaweed_master_port}"
    return run_shell(seaweed_dir(settings), master, script, timeout_s)


def log_files(settings: Settings) -> list[LogFile]:
    days = [e.path for e in parse_listing(weed_shell(settings, f"fs.ls -l {LOG_ROOT}\n")) if e.is_dir]
    if not days:
        return []
    listing = weed_shell(settings, "".join(f"fs.ls -l {day}\n" for day in days))
    return [f for f in map(log_file, parse_listing(listing)) if f is not None]


def volume_bytes(settings: Settings) -> tuple[int, int]:
    """(bytes, deleted bytes not yet vacuumed) in this stack's SeaweedFS volumes."""
    return volume_totals(weed_shell(settings, "volume.list\n"))


def wait_for_garbage(settings: Settings, before: int, poll_s: float = 0.5) -> None:
    """Wait until the volumes' garbage has grown past ``before`` and holds still between two polls:
    the filer hands deleted chunks to the volumes in the background, and a vacuum sooner would
    miss them. Bounded by ``GARBAGE_WAIT_S`` (SeaweedFS's own vacuum and the next hour's purge
    reclaim what is late). The volumes store chunks compressed, so the logical bytes deleted do
    not say how much garbage to expect."""
    deadline, last = time.monotonic() + GARBAGE_WAIT_S, before
    while time.monotonic() < deadline:
        time.sleep(poll_s)
        garbage = volume_bytes(settings)[1]
        if last > before and garbage == last:
            return
        last = garbage


def purge_log(settings: Settings, older_than: datetime) -> LogPurge:
    """Delete the journal's minute files older than ``older_than`` and vacuum the volumes that held
    them (SeaweedFS's own garbage threshold). Day folders left empty are removed too."""
    began = time.perf_counter()
    files = log_files(settings)
    gone = expired(files, older_than)
    kept = [f for f in files if f not in gone]
    if gone:
        kept_days = {f.path.rsplit("/", 1)[0] for f in kept}
        empty_days = sorted({f.path.rsplit("/", 1)[0] for f in gone} - kept_days)
        garbage_before = volume_bytes(settings)[1]
        weed_shell(settings, rm_script(gone) + "".join(f"fs.rm -r {day}\n" for day in empty_days))
        wait_for_garbage(settings, garbage_before)
        weed_shell(settings, "lock\nvolume.vacuum\nunlock\n")
    return LogPurge(
        files_deleted=len(gone),
        bytes_deleted=sum(f.size for f in gone),
        files_kept=len(kept),
        bytes_kept=sum(f.size for f in kept),
        seconds=time.perf_counter() - began,
    )
