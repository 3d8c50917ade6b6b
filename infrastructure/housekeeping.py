"""Local files a running stack accumulates, kept bounded: service logs and Airflow's task logs.

- **Service logs** (``<data_dir>/logs/<service>.log``): each service appends its output to one file
  opened with ``O_APPEND`` (:func:`infrastructure.services.start`). Once a file is larger than the
  limit it is copied to ``<service>.log.1`` (replacing the previous copy) and truncated in place:
  the service keeps writing to the same descriptor, and ``O_APPEND`` puts its next line at the new
  end. At most two limits' worth per service; lines written between the copy and the truncation
  (milliseconds) are lost, which is the usual price of rotating without the writer's help.
- **Airflow task logs** (one file per task try under ``AIRFLOW__LOGGING__BASE_LOG_FOLDER``, about
  30 a run of the hourly DAGs): files older than the retention are deleted, and folders left empty.

The hourly ``crypto_maintenance`` run calls both (``processing.maintenance.run_housekeeping``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROTATED_SUFFIX = ".1"


@dataclass(frozen=True)
class FilesPruned:
    files: int
    bytes: int


def logs_to_rotate(sizes: dict[Path, int], max_bytes: int) -> list[Path]:
    """The logs over ``max_bytes`` (pure)."""
    return sorted(path for path, size in sizes.items() if size > max_bytes)


def rotate_service_logs(folder: Path, max_bytes: int) -> list[Path]:
    """Copy-and-truncate every ``*.log`` in ``folder`` larger than ``max_bytes``; returns them."""
    if not folder.is_dir():
        return []
    rotated = logs_to_rotate({p: p.stat().st_size for p in folder.glob("*.log") if p.is_file()}, max_bytes)
    for path in rotated:
        shutil.copyfile(path, path.with_name(path.name + ROTATED_SUFFIX))
        os.truncate(path, 0)
    return rotated


def prune_old_files(folder: Path, older_than: datetime) -> FilesPruned:
    """Delete the files under ``folder`` last modified before ``older_than``, then the folders that
    leaves empty (``folder`` itself stays)."""
    if not folder.is_dir():
        return FilesPruned(0, 0)
    cutoff = older_than.timestamp()
    files = size = 0
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = Path(root, name)
            stat = path.lstat()
            if stat.st_mtime < cutoff:
                path.unlink()
                files, size = files + 1, size + stat.st_size
        for name in dirs:
            # rmdir removes only an empty folder: one still holding files (or being written into
            # by a running task) is left as it is
            with contextlib.suppress(OSError):
                Path(root, name).rmdir()
    return FilesPruned(files, size)
