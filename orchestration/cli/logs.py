"""``lakehouse logs [SERVICE] [-f]``: the embedded services' and workers' logs (``<data_dir>/logs/``)."""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

import click

FOLLOW_POLL_S = 0.5


def available(logs: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(logs.glob("*.log"))} if logs.is_dir() else {}


def tail(path: Path, lines: int) -> tuple[list[str], int]:
    """The last ``lines`` lines of ``path`` (read in one pass, bounded memory) and its size."""
    with path.open("rb") as log:
        last = deque(log, maxlen=lines)
        return [line.decode("utf-8", errors="replace").rstrip("\n") for line in last], log.tell()


@click.command("logs")
@click.argument("service", required=False)
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing what is appended (Ctrl-C stops).")
def logs_command(service: str | None, lines: int, follow: bool) -> None:
    """Without SERVICE: list the logs there are; with it: print its last lines (and follow them)."""
    from infrastructure.settings import load_settings

    folder = load_settings().data_dir / "logs"
    found = available(folder)
    if service is None:
        if not found:
            click.echo(f"no logs under {folder} yet: `lakehouse up` starts the services")
        for name, path in found.items():
            stat = path.stat()
            when = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
            click.echo(f"{name:<16} {stat.st_size:>12,} bytes  {when}  {path}")
        return
    if service not in found:
        names = ", ".join(found) or "none yet"
        raise click.BadParameter(
            f"no log {service!r} under {folder} (there are: {names})", param_hint="SERVICE"
        )
    path = found[service]
    shown, offset = tail(path, lines)
    for line in shown:
        click.echo(line)
    if not follow:
        return
    try:
        while True:
            time.sleep(FOLLOW_POLL_S)
            size = path.stat().st_size
            if size < offset:  # truncated or replaced: start from its beginning
                offset = 0
            if size > offset:
                with path.open("rb") as log:
                    log.seek(offset)
                    data = log.read(size - offset)
                offset = size
                click.echo(data.decode("utf-8", errors="replace"), nl=False)
    except KeyboardInterrupt:
        pass
